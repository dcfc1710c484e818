// α-entmax for any α > 1 on one row: exact threshold search, backward and the α-gradient.
#pragma once

#include <entmax/detail/debug.hpp>
#include <entmax/detail/entmax_backward.hpp>
#include <entmax/detail/row.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/detail/threshold_alpha.hpp>
#include <entmax/detail/widen.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace entmax {

/// α-entmax of one row for any α > 1: p_i = [(α−1)(z_i − m) − τ]_+^{1/(α−1)} with Σ p = 1.
///
/// Despite the name (kept from the reference implementation) this is not a fixed-step
/// bisection: candidates above a lower bound of τ are collected, τ is found by Newton's method
/// on the κ-norm of (d − τ)_+ (κ = 1/(α−1)) safeguarded by bisection, elements that fall below
/// the rising lower bound are dropped, and the search stops when its step stagnates at working
/// precision; then one output pass writes p, raising to the power κ only where p > 0.
///
/// @param z      n contiguous scores; −inf marks a masked entry.
/// @param p      n outputs; may alias z (in-place).
/// @param n      row length; 0 is a no-op.
/// @param alpha  α > 1 and finite, else std::domain_error before any write (α = 1 is softmax).
/// @return       RowStats{max m, τ in shifted coordinates (in [−1, −n^{1−α}]), non-zeros}.
///
/// Numerics: all arithmetic in double (float rows are widened), p renormalised by the sum at
/// the final τ and rounded once to T. Agrees with a long-double reference to a few ε for α ≤ 2;
/// for α > 2, p near the support boundary is ill-conditioned and accuracy degrades like
/// ε^{1/(α−1)}. κ ∈ {1, 2, …, 16, ½} use exact products/square roots instead of exp(κ log x).
/// −inf scores give exactly 0; an all −inf row gives zeros (support 0); NaN or +inf gives a
/// NaN row. Uses a thread-local scratch buffer of n doubles.
template <class T, class Arch = xsimd::default_arch>
inline RowStats<T> entmax_bisect(const T* z, T* p, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax_bisect: T must be float or double");
  detail::check_alpha("entmax_bisect", alpha);
  detail::debug_check_scores("entmax::entmax_bisect", z, n);
  const detail::RowScan<T> scan = detail::scan_row<T, Arch>(z, n);
  RowStats<T> stats{};
  if (detail::special_row<T, Arch>(scan, p, n, stats)) return stats;
  const double a = static_cast<double>(alpha) - 1.0;
  if (scan.min == scan.max) {  // all equal: p = 1/n, τ = −n^{−a}
    detail::fill<T, Arch>(p, n, static_cast<T>(1.0 / static_cast<double>(n)));
    stats = RowStats<T>{scan.max, static_cast<T>(-std::pow(static_cast<double>(n), -a)), n};
    detail::debug_check_row("entmax::entmax_bisect", p, n, stats, static_cast<double>(alpha));
    return stats;
  }
  std::size_t support = 0;
  const double tau = detail::with_alpha_power<Arch>(a, [&](const auto& pw) {
    using Pow = std::decay_t<decltype(pw)>;
    return detail::entmax_alpha_row<T, Pow, Arch>(z, p, n, scan.max, a, pw, support);
  });
  stats.max = scan.max;
  stats.tau = static_cast<T>(tau);
  stats.support = support;
  detail::debug_check_row("entmax::entmax_bisect", p, n, stats, static_cast<double>(alpha));
  return stats;
}

/// Rebuilds entmax_bisect's output from its RowStats: p_i = [(α−1)(z_i − max) − τ]_+^{1/(α−1)},
/// renormalised to Σ p = 1 (two passes, double arithmetic). Equals the forward output up to the
/// rounding of τ to T (a few ulps). p may alias z. support 0 gives zeros (NaN if max is NaN).
/// alpha must be the forward's α (> 1, else std::domain_error before any write).
template <class T, class Arch = xsimd::default_arch>
inline void entmax_from_stats(const T* z, const RowStats<T>& stats, T* p, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax_from_stats: T must be float or double");
  detail::check_alpha("entmax_from_stats", alpha);
  if (detail::special_from_stats<T, Arch>(stats, p, n)) return;
  const double a = static_cast<double>(alpha) - 1.0;
  const double m = static_cast<double>(stats.max);
  const double tau = static_cast<double>(stats.tau);
  detail::with_alpha_power<Arch>(a, [&](const auto& pw) {
    using Pow = std::decay_t<decltype(pw)>;
    const double sum = detail::alpha_row_sum<T, Pow, Arch>(z, n, m, a, tau, pw);
    return detail::write_alpha_output<T, Pow, Arch>(z, p, n, m, a, tau, sum, pw);
  });
}

namespace detail {
/// u = p^e (0 < e < 1: α-entmax with 1 < α < 2), computed in T; maps 0 to 0.
struct PowWeight {
  double e;
  template <class T, class A>
  xsimd::batch<T, A> operator()(const xsimd::batch<T, A>& p) const {
    return xsimd::exp(xsimd::batch<T, A>(static_cast<T>(e)) * xsimd::log(p));
  }
  template <class T>
  T operator()(T p) const {
    return p > T(0) ? static_cast<T>(std::pow(static_cast<double>(p), e)) : T(0);
  }
};
}  // namespace detail

/// Vector-Jacobian product of α-entmax: u = p^{2−α} on the support, dz = u ⊙ dp − (⟨u, dp⟩/Σu)·u.
///
/// @param p      the forward output (n values); dz is exactly 0 where p = 0.
/// @param dp     dL/dp; dz may alias dp (not p).
/// @param alpha  α > 1, finite (std::domain_error before any write).
/// Numerics: sums in double. α < 2 computes u in T (SIMD), α = 1.5 and 2 use √p and the
/// indicator; α > 2 computes u in double, rescaled by the smallest support probability so Σu
/// cannot overflow. An all-zero p (fully masked row) gives dz = 0.
template <class T, class Arch = xsimd::default_arch>
inline void entmax_bisect_backward(const T* p, const T* dp, T* dz, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>,
                "entmax::entmax_bisect_backward: T must be float or double");
  detail::check_alpha("entmax_bisect_backward", alpha);
  if (alpha == T(2)) {
    detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::IndicatorWeight{});
  } else if (alpha == T(1.5)) {
    detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::SqrtWeight{});
  } else if (alpha < T(2)) {
    detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::PowWeight{2.0 - static_cast<double>(alpha)});
  } else {
    detail::entmax_vjp_alpha(p, dp, dz, n, static_cast<double>(alpha));
  }
}

/// dL/dα of α-entmax (Correia et al. 2019), given p = entmax_α(z) and dp = dL/dp:
///   dα = Σ_i dp_i [ (p_i − ũ_i)/(α−1)² − (p_i log p_i − ũ_i H)/(α−1) ],
/// with u = p^{2−α} on the support, ũ = u / Σu and H = Σ p_i log p_i.
///
/// Numerics: computed in double. The two terms are each O(1/(α−1)) and cancel to O(1); p − ũ
/// is formed as −p·expm1(−(α−1) log p − log Σu) (log Σu through log1p) so that for α near 1
/// the error stays near ε/(α−1) instead of ε/(α−1)² (for double input, about 1e-12 relative at
/// α − 1 = 1e-4). The accuracy is bounded by that of p itself: with float p, expect about
/// 1e-7/(α−1) relative (unreliable below α − 1 ≈ 1e-2). An all-zero p gives 0; NaN propagates.
template <class T, class Arch = xsimd::default_arch>
inline T entmax_alpha_grad(const T* p, const T* dp, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax_alpha_grad: T must be float or double");
  detail::check_alpha("entmax_alpha_grad", alpha);
  const double a = static_cast<double>(alpha) - 1.0;
  // Pass 1: Σp, H = Σ p log p, and log Σu.
  double sp = 0, h = 0, se = 0;  // se = Σ p·expm1(−a log p)  (a ≤ 1/2)
  double lmin = 0, lmax = -std::numeric_limits<double>::infinity();
  bool any = false, bad = false;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    if (pi > 0) {
      const double l = std::log(pi);
      any = true;
      sp += pi;
      h += pi * l;
      if (a <= 0.5) se += pi * std::expm1(-a * l);
      lmin = l < lmin ? l : lmin;
      lmax = l > lmax ? l : lmax;
    } else if (!(pi == 0)) {
      bad = true;
    }
  }
  if (bad) return std::numeric_limits<T>::quiet_NaN();
  if (!any) return T(0);
  double log_su;  // log Σ_j p_j^{1−a}
  if (a <= 0.5) {
    log_su = std::log1p(se + (sp - 1.0));
  } else {
    // log-sum-exp of (1−a) log p, shifted by its largest term.
    const double mx = (1.0 - a) * (a < 1.0 ? lmax : lmin);
    double s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double pi = static_cast<double>(p[i]);
      if (pi > 0) s += std::exp((1.0 - a) * std::log(pi) - mx);
    }
    log_su = mx + std::log(s);
  }
  // Pass 2: Σ dp_i [(p_i − ũ_i)/a² − (S_i − ũ_i H)/a].
  double g1 = 0, g2 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    if (!(pi > 0)) continue;
    const double l = std::log(pi);
    double ut, diff;
    if (a <= 0.5) {
      const double r = std::expm1(-a * l - log_su);  // ũ/p − 1
      diff = -pi * r;
      ut = pi + pi * r;
    } else {
      ut = std::exp((1.0 - a) * l - log_su);
      diff = pi - ut;
    }
    const double g = static_cast<double>(dp[i]);
    g1 += g * diff;
    g2 += g * (pi * l - ut * h);
  }
  return static_cast<T>(g1 / (a * a) - g2 / a);
}

}  // namespace entmax
