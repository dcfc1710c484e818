// quickstart: one row of scores through softmax, sparsemax, 1.5-entmax and α = 1.25 entmax.
// The README quotes the lines between the two "[quickstart]" markers.
#include <entmax/entmax.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>

namespace {

/// --check: the optimality conditions of α-entmax, verified in long double without the library:
/// p_i^{α−1} = (α−1) z_i − τ' on the support and (α−1) z_i <= τ' off it, for one τ' (softmax: p_i ∝
/// e^{z_i}); Σp = 1; and the support shrinks as α grows.
int check(const double* z, std::size_t n) {
  int failed = 0;
  std::size_t previous_support = n + 1;
  const double alphas[] = {1.0, 1.25, 1.5, 2.0};
  for (double alpha : alphas) {
    double p[8];
    entmax::RowStats<double> s{};
    if (alpha == 1.0) s = entmax::softmax(z, p, n);
    if (alpha == 1.25) s = entmax::entmax_bisect(z, p, n, alpha);
    if (alpha == 1.5) s = entmax::entmax15(z, p, n);
    if (alpha == 2.0) s = entmax::sparsemax(z, p, n);
    long double sum = 0, lo = INFINITY, hi = -INFINITY, off = -INFINITY;
    std::size_t support = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += p[i];
      // On the support, t_i = (α−1) z_i − p_i^{α−1} is the same τ' for every i (softmax: z_i − log p_i).
      if (p[i] > 0) {
        ++support;
        const long double t = alpha == 1.0 ? z[i] - std::log(static_cast<long double>(p[i]))
                                           : (alpha - 1) * static_cast<long double>(z[i]) -
                                                 std::pow(static_cast<long double>(p[i]), alpha - 1.0L);
        lo = std::fmin(lo, t), hi = std::fmax(hi, t);
      } else {
        off = std::fmax(off, (alpha - 1) * static_cast<long double>(z[i]));
      }
    }
    const bool ok = std::fabs(static_cast<double>(sum) - 1) < 1e-14 && static_cast<double>(hi - lo) < 1e-12 &&
                    off <= lo + 1e-12 && support == s.support && support <= previous_support;
    std::printf("  %-5s alpha %.2f: sum %.17g, tau' spread %.2g, support %zu (reported %zu)\n",
                ok ? "ok" : "FAIL", alpha, static_cast<double>(sum), static_cast<double>(hi - lo), support,
                s.support);
    failed += ok ? 0 : 1;
    previous_support = support;
  }
  std::printf(failed ? "quickstart: FAILED\n" : "quickstart: optimality conditions hold for all four maps\n");
  return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  // [quickstart]
  const double z[6] = {1.6, 1.3, 1.1, 0.5, 0.0, -2.5};  // one row of attention scores
  double p[6];
  auto show = [&p](const char* name, entmax::RowStats<double> s) {
    std::printf("%-10s %.4f %.4f %.4f %.4f %.4f %.4f  support %zu\n", name, p[0], p[1], p[2], p[3], p[4],
                p[5], s.support);
  };
  show("softmax", entmax::softmax(z, p, 6));
  show("sparsemax", entmax::sparsemax(z, p, 6));
  show("entmax15", entmax::entmax15(z, p, 6));
  show("alpha 1.25", entmax::entmax_bisect(z, p, 6, 1.25));
  // [quickstart]
  if (argc > 1 && std::strcmp(argv[1], "--check") == 0) return check(z, 6);
  return 0;
}
