// EXPECT: entmax::attention: T must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/attention.hpp>

int main() {
#if ENTMAX_COMPILE_FAIL
  using T = long double;
#else
  using T = double;
#endif
  Eigen::Tensor<T, 4, Eigen::RowMajor> q(1, 1, 2, 4), k(1, 1, 3, 4);
  q.setZero();
  k.setZero();
  auto o = entmax::attention(q, k, k, entmax::Softmax{});
  return o.size() == 8 ? 0 : 1;
}
