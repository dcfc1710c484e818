// EXPECT: entmax::softmax: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/softmax.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  int z[3] = {1, 2, 3};
  int p[3];
  entmax::softmax(z, p, std::size_t{3});
#else
  float z[3] = {1, 2, 3};
  float p[3];
  entmax::softmax(z, p, std::size_t{3});
#endif
  return 0;
}
