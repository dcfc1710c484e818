// EXPECT: entmax::entmax_bisect_backward: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/entmax_bisect.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  int p[3] = {0, 1, 0}, dp[3] = {1, 2, 3};
  int dz[3];
  entmax::entmax_bisect_backward(p, dp, dz, std::size_t{3}, 2);
#else
  float p[3] = {0, 1, 0}, dp[3] = {1, 2, 3};
  float dz[3];
  entmax::entmax_bisect_backward(p, dp, dz, std::size_t{3}, 2.0f);
#endif
  return 0;
}
