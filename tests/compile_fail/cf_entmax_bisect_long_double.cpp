// EXPECT: entmax::entmax_bisect: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/entmax_bisect.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  long double z[3] = {1, 2, 3};
  long double p[3];
  entmax::entmax_bisect(z, p, std::size_t{3}, 1.5L);
#else
  double z[3] = {1, 2, 3};
  double p[3];
  entmax::entmax_bisect(z, p, std::size_t{3}, 1.5);
#endif
  return 0;
}
