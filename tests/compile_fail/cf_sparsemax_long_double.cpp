// EXPECT: entmax::sparsemax: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/sparsemax.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  long double z[3] = {1, 2, 3};
  long double p[3];
  entmax::sparsemax(z, p, std::size_t{3});
#else
  double z[3] = {1, 2, 3};
  double p[3];
  entmax::sparsemax(z, p, std::size_t{3});
#endif
  return 0;
}
