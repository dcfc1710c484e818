// 1.5-entmax on one row, exact: p_i = [(z_i − m)/2 − τ]_+², Σ p = 1.
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/candidates.hpp>
#include <entmax/detail/debug.hpp>
#include <entmax/detail/entmax_backward.hpp>
#include <entmax/detail/row.hpp>
#include <entmax/detail/row_output.hpp>
#include <entmax/detail/scratch.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/detail/threshold.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace entmax {

namespace detail {
// p = max(((z − m)·½ − τ) − τ_lo, 0)², as a batch map and a scalar map; from_x takes x = (z − m)·½.
template <class T, class Arch>
struct Entmax15Map {
  using B = xsimd::batch<T, Arch>;
  T m, tau, tau_lo;
  B mb, tb, lb;
  explicit Entmax15Map(const RowStats<T>& s)
      : m(s.max), tau(s.tau), tau_lo(s.tau_lo), mb(s.max), tb(s.tau), lb(s.tau_lo) {}
  B operator()(const B& z) const { return from_x((z - mb) * B(T(0.5))); }
  T operator()(T z) const { return from_x((z - m) * T(0.5)); }
  B from_x(const B& x) const {
    const B d = xsimd::max((x - tb) - lb, B(T(0)));
    return d * d;
  }
  T from_x(T x) const {
    T d = (x - tau) - tau_lo;
    d = d > T(0) ? d : T(0);
    return d * d;
  }
};

// With d the exact values, τ off by δ (≤ 1 ulp) moves Σp by 2δ·Σd ≤ 2δ·√support (Σd² = 1);
// the output roundings add ≤ 1.5ε. When the first could exceed 2ε (float) / 12ε (double), the
// forward carries the rest of τ in tau_lo: Σ_S (x − τ)² − 1 = 2·tau_lo·Σ_S (x − τ) to first order.
template <class T>
inline bool entmax15_sum_at_risk(T tau, std::size_t support) {
  constexpr double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  const double u = ulp_at(tau), c = (std::is_same_v<T, float> ? 1.0 : 6.0) * eps;  // 2√k·u > 2c ⇔ k·u² > c²
  return static_cast<double>(support) * u * u > c * c;
}

}  // namespace detail

/// 1.5-entmax of one row (Peters et al. 2019): p_i = [(z_i − m)/2 − τ]_+² with Σ p = 1.
///
/// @param z  n contiguous scores; −inf marks a masked entry.
/// @param p  n outputs; may alias z (in-place).
/// @return   RowStats: max m, tau (shifted coordinates, in [−1, −1/√n]), support = non-zeros.
/// Numerics: exact threshold (Newton from the left on the candidates above −1, closed-form
/// finish certified on the support, sums in double-double, τ rounded to nearest T; on deep
/// supports the rest of τ is carried in stats.tau_lo so that neither Σp nor any p_i carries the
/// rounding of τ, see detail::entmax15_sum_at_risk). −inf scores give exactly 0; all −inf gives
/// zeros (support 0); NaN or +inf gives a NaN row. Uses thread-local scratch: about 2n elements
/// of T plus 8 KiB (detail::collect_scratch_size) and n/batch indices.
template <class T, class Arch = xsimd::default_arch>
inline RowStats<T> entmax15(const T* z, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax15: T must be float or double");
  detail::debug_check_scores("entmax::entmax15", z, n);
  T* buf = detail::scratch<T>(detail::collect_scratch_size<T, Arch>(n));
  T* tmp = buf + n + detail::batch_size<T, Arch>;
  std::size_t* hits = detail::scratch<std::size_t>(detail::collect_hits_size<T, Arch>(n));
  std::size_t nhits = 0;
  detail::RowScan<T> scan{};
  T theta{};
  std::size_t k =
      detail::collect_above_bound<T, Arch, detail::Entmax15Bound>(z, n, buf, tmp, scan, theta, hits, nhits);
  RowStats<T> stats{};
  if (detail::special_row<T, Arch>(scan, p, n, stats)) return stats;
  detail::shift_scale<T, Arch>(buf, k, scan.max, T(0.5));
  // Every score left out is ≤ theta, so (theta − max)·½ is a lower bound of τ.
  const double tau0 = (static_cast<double>(theta) - static_cast<double>(scan.max)) * 0.5 - 1e-12;
  double floor = -1.0;
  const double tau_d = detail::entmax15_threshold<T, Arch>(buf, k, floor, tau0);
  const bool tied = detail::all_zero(buf, k);  // a support of ties at the max: τ picked by its square
  stats.max = scan.max;
  stats.tau = tied ? detail::entmax15_tied_top(k, detail::threshold_to<T>(tau_d, floor), floor)
                   : detail::threshold_to<T>(tau_d, floor);
  stats.support = detail::count_above(buf, k, stats.tau);
  if (!tied && detail::entmax15_sum_at_risk(stats.tau, stats.support)) {
    const detail::SupportSums s = detail::support_sums<T, Arch>(buf, k, stats.tau);
    stats.tau_lo =
        detail::bounded_tau_lo((s.sd2 - 1.0) / (2.0 * s.sd), stats.tau, (theta - scan.max) * T(0.5));
  }
  detail::write_exact_output<T, Arch>(z, p, n, detail::Entmax15Map<T, Arch>(stats), hits, nhits, stats);
  detail::debug_check_row("entmax::entmax15", p, n, stats, 1.5);
  return stats;
}

/// Rebuilds entmax15's output from its RowStats, bitwise equal to entmax15(): p_i =
/// max(((z_i − max)/2 − tau) − tau_lo, 0)². p may alias z. support 0 gives zeros (NaN if max is
/// NaN).
template <class T, class Arch = xsimd::default_arch>
inline void entmax15_from_stats(const T* z, const RowStats<T>& stats, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax15_from_stats: T must be float or double");
  if (detail::special_from_stats<T, Arch>(stats, p, n)) return;
  detail::write_output<T, Arch>(z, p, n, detail::Entmax15Map<T, Arch>(stats));
}

/// Vector-Jacobian product of 1.5-entmax: u = √p, dz = u ⊙ dp − (⟨u, dp⟩/Σu)·u; dz = 0 where
/// p = 0. dz may alias dp. Sums in double. An all-zero p gives dz = 0.
template <class T, class Arch = xsimd::default_arch>
inline void entmax15_backward(const T* p, const T* dp, T* dz, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax15_backward: T must be float or double");
  detail::debug_check_backward("entmax::entmax15_backward", p, dp, n);
  detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::SqrtWeight{});
}

}  // namespace entmax
