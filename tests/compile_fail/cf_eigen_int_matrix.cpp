// EXPECT: entmax::normalize_rows: scalar type must be float or double
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/eigen.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  Eigen::MatrixXi z = Eigen::MatrixXi::Zero(2, 3), p(2, 3);
  entmax::normalize_rows(entmax::Softmax{}, z, p);
#else
  Eigen::MatrixXd z = Eigen::MatrixXd::Zero(2, 3), p(2, 3);
  entmax::normalize_rows(entmax::Softmax{}, z, p);
#endif
  return 0;
}
