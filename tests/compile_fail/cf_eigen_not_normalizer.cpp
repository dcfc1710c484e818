// EXPECT: entmax::normalize_rows: Norm must model the Normalizer trait or be a row-scaled policy
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/eigen.hpp>

#include <cstddef>

int main() {
#if ENTMAX_COMPILE_FAIL
  struct NotANormalizer {
    float forward(const float*, float*, std::size_t) const { return 0; }  // wrong return type
  };
  Eigen::MatrixXf z = Eigen::MatrixXf::Zero(2, 3), p(2, 3);
  entmax::normalize_rows(NotANormalizer{}, z, p);
#else
  Eigen::MatrixXf z = Eigen::MatrixXf::Zero(2, 3), p(2, 3);
  entmax::normalize_rows(entmax::Sparsemax{}, z, p);
#endif
  return 0;
}
