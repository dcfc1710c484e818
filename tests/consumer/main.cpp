// Uses entmax the way code outside the repository does: one include, the public names only.
#include <entmax/entmax.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstdio>

int main() {
  static_assert(ENTMAX_VERSION >= 100, "entmax version macro");
  int failures = 0;
  // sparsemax([0.5, 0, -3]) = [0.75, 0.25, 0]
  const float z[3] = {0.5f, 0.0f, -3.0f};
  float p[3];
  entmax::sparsemax(z, p, 3);
  failures += std::fabs(p[0] - 0.75f) > 1e-6f || std::fabs(p[1] - 0.25f) > 1e-6f || p[2] != 0.0f;
  // The same row through the Eigen adapter, column-major storage.
  Eigen::MatrixXd zm(1, 3);
  zm << 0.5, 0.0, -3.0;
  const Eigen::MatrixXd pm = entmax::normalize_rows(entmax::Sparsemax{}, zm);
  failures += std::fabs(pm(0, 0) - 0.75) > 1e-12 || pm(0, 2) != 0.0;
  std::printf("entmax %d.%d.%d consumer: %s\n", ENTMAX_VERSION_MAJOR, ENTMAX_VERSION_MINOR,
              ENTMAX_VERSION_PATCH, failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
