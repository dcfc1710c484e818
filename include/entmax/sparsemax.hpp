// Sparsemax on one row (α = 2): the Euclidean projection of z onto the simplex, exact.
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
// p = max(((z − m) − τ) − τ_lo, 0), as a batch map and a scalar map; from_x takes x = z − m.
template <class T, class Arch>
struct SparsemaxMap {
  using B = xsimd::batch<T, Arch>;
  T m, tau, tau_lo;
  B mb, tb, lb;
  explicit SparsemaxMap(const RowStats<T>& s)
      : m(s.max), tau(s.tau), tau_lo(s.tau_lo), mb(s.max), tb(s.tau), lb(s.tau_lo) {}
  B operator()(const B& z) const { return from_x(z - mb); }
  T operator()(T z) const { return from_x(z - m); }
  B from_x(const B& x) const { return xsimd::max((x - tb) - lb, B(T(0))); }
  T from_x(T x) const {
    const T d = (x - tau) - tau_lo;
    return d > T(0) ? d : T(0);
  }
};

// Σp − 1 = support·(τ* − τ) up to the output roundings (≤ ε/2), so τ rounded to T (≤ ½ ulp
// away) can leave Σp support·ulp(τ)/2 off. When that could exceed 1.5ε (float) / 6ε (double),
// the forward carries the rest of τ in tau_lo: Σ_S (x − τ) − 1 = support·tau_lo.
template <class T>
inline bool sparsemax_sum_at_risk(T tau, std::size_t support) {
  constexpr double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  return static_cast<double>(support) * ulp_at(tau) > (std::is_same_v<T, float> ? 3.0 : 12.0) * eps;
}

}  // namespace detail

/// Sparsemax of one row: p = argmin_{p ∈ simplex} ‖p − z‖², i.e. p_i = [(z_i − m) − τ]_+.
///
/// @param z  n contiguous scores; −inf marks a masked entry.
/// @param p  n outputs; may alias z (in-place).
/// @return   RowStats: max m, tau (shifted coordinates, in [−1, −1/n]), support = non-zeros.
/// Numerics: exact threshold (Michelot on the candidates above −1, sums in double-double, τ rounded to
/// nearest T; when support·|τ| is large, the rest of τ is carried in stats.tau_lo so that neither Σp
/// nor any p_i carries the rounding of τ, see detail::sparsemax_sum_at_risk). −inf scores give
/// exactly 0; all −inf gives zeros (support 0); NaN or +inf gives a NaN row. Uses thread-local
/// scratch: about 2n elements of T plus 8 KiB (detail::collect_scratch_size) and n/batch indices.
template <class T, class Arch = xsimd::default_arch>
inline RowStats<T> sparsemax(const T* z, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::sparsemax: T must be float or double");
  detail::debug_check_scores("entmax::sparsemax", z, n);
  T* buf = detail::scratch<T>(detail::collect_scratch_size<T, Arch>(n));
  T* tmp = buf + n + detail::batch_size<T, Arch>;
  std::size_t* hits = detail::scratch<std::size_t>(detail::collect_hits_size<T, Arch>(n));
  std::size_t nhits = 0;
  detail::RowScan<T> scan{};
  T theta{};
  std::size_t k =
      detail::collect_above_bound<T, Arch, detail::SparsemaxBound>(z, n, buf, tmp, scan, theta, hits, nhits);
  RowStats<T> stats{};
  if (detail::special_row<T, Arch>(scan, p, n, stats)) return stats;
  detail::shift_scale<T, Arch>(buf, k, scan.max, T(1));
  double floor = -1.0;
  const double tau_d = detail::sparsemax_threshold<T, Arch>(buf, k, floor);
  stats.max = scan.max;
  stats.tau = detail::threshold_to<T>(tau_d, floor);
  stats.support = detail::count_above(buf, k, stats.tau);
  if (detail::sparsemax_sum_at_risk(stats.tau, stats.support)) {
    const detail::SupportSums s = detail::support_sums<T, Arch>(buf, k, stats.tau);
    stats.tau_lo = detail::bounded_tau_lo((s.sd - 1.0) / s.k, stats.tau, theta - scan.max);
  }
  detail::write_exact_output<T, Arch>(z, p, n, detail::SparsemaxMap<T, Arch>(stats), hits, nhits, stats);
  detail::debug_check_row("entmax::sparsemax", p, n, stats, 2.0);
  return stats;
}

/// Rebuilds sparsemax's output from its RowStats, bitwise equal to sparsemax(): p_i =
/// max(((z_i − max) − tau) − tau_lo, 0). p may alias z. support 0 gives zeros (NaN if stats.max is
/// NaN).
template <class T, class Arch = xsimd::default_arch>
inline void sparsemax_from_stats(const T* z, const RowStats<T>& stats, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::sparsemax_from_stats: T must be float or double");
  if (detail::special_from_stats<T, Arch>(stats, p, n)) return;
  detail::write_output<T, Arch>(z, p, n, detail::SparsemaxMap<T, Arch>(stats));
}

/// Vector-Jacobian product of sparsemax: on the support S = {p > 0}, dz = dp − mean_S(dp);
/// dz = 0 elsewhere. dz may alias dp. Sums in double. An all-zero p gives dz = 0.
template <class T, class Arch = xsimd::default_arch>
inline void sparsemax_backward(const T* p, const T* dp, T* dz, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::sparsemax_backward: T must be float or double");
  detail::debug_check_backward("entmax::sparsemax_backward", p, dp, n);
  detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::IndicatorWeight{});
}

}  // namespace entmax
