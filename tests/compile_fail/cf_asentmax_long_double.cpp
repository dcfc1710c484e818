// EXPECT: entmax::asentmax: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/asentmax.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  long double z[3] = {1, 2, 3};
  long double p[3];
  entmax::asentmax(z, p, std::size_t{3}, 1.5L, 1.0L, 1.0L, 1.0L, std::size_t{4});
#else
  float z[3] = {1, 2, 3};
  float p[3];
  entmax::asentmax(z, p, std::size_t{3}, 1.5f, 1.0f, 1.0f, 1.0f, std::size_t{4});
#endif
  return 0;
}
