// EXPECT: entmax::attention_backward: the normalizer must model entmax::Normalizer
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/attention.hpp>

int main() {
  Eigen::Tensor<double, 4, Eigen::RowMajor> q(1, 1, 2, 4), k(1, 1, 3, 4);
  q.setZero();
  k.setZero();
#if ENTMAX_COMPILE_FAIL
  auto g = entmax::attention_backward(q, k, k, q, 1.5);  // a number is not a policy
#else
  auto g = entmax::attention_backward(q, k, k, q, entmax::EntmaxBisect<double>{1.5});
#endif
  return g.dq.size() == 8 ? 0 : 1;
}
