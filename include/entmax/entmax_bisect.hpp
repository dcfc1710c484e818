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
/// Numerics: τ is decided and p computed in double (float rows are widened; for α ≤ 2 they
/// first search in float lanes, which only picks the start), p renormalised by the sum at the
/// final τ and rounded once to T. Agrees with a long-double reference to a few ε for α ≤ 2;
/// for α > 2, p near the support boundary is ill-conditioned and accuracy degrades like
/// ε^{1/(α−1)}. κ ∈ {1, 2, …, 16, ½} use exact products/square roots instead of exp(κ log x).
/// −inf scores give exactly 0; an all −inf row gives zeros (support 0); NaN or +inf gives a
/// NaN row. Uses a thread-local scratch buffer of n doubles.
template <class T, class Arch = xsimd::default_arch>
inline RowStats<T> entmax_bisect(const T* z, T* p, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax_bisect: T must be float or double");
  detail::check_alpha("entmax::entmax_bisect", alpha);
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
  detail::check_alpha("entmax::entmax_from_stats", alpha);
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
/// u = p^e (0 < e < 1: α-entmax with 1 < α < 2), computed in T; maps 0 to 0 (NaN to NaN).
struct PowWeight {
  double e;
  template <class T, class A>
  xsimd::batch<T, A> operator()(const xsimd::batch<T, A>& p) const {
    return pow_unit(p, static_cast<T>(e));
  }
  template <class T>
  T operator()(T p) const {
    return p == T(0) ? T(0) : static_cast<T>(std::pow(static_cast<double>(p), e));  // NaN stays NaN
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
  detail::check_alpha("entmax::entmax_bisect_backward", alpha);
  detail::debug_check_backward("entmax::entmax_bisect_backward", p, dp, n);
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
  detail::check_alpha("entmax::entmax_alpha_grad", alpha);
  detail::debug_check_backward("entmax::entmax_alpha_grad", p, dp, n);
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const double a = static_cast<double>(alpha) - 1.0;
  const bool near_one = a <= 0.5;  // the expm1 form; otherwise ũ directly from a log-sum-exp
  const B va(a), zero(0.0), one(1.0), inf(std::numeric_limits<double>::infinity());
  // Runs body(pv, dv) over blocks of W lanes holding at least one p ≠ 0 (tail padded with 0).
  auto blocks = [&](auto&& body) {
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const B pv = detail::load_widened<Arch>(p + i);
      if (xsimd::any(pv != zero)) body(pv, detail::load_widened<Arch>(dp + i));
    }
    if (i < n) {
      T tp[W] = {}, td[W] = {};
      for (std::size_t j = 0; i + j < n; ++j) tp[j] = p[i + j], td[j] = dp[i + j];
      body(detail::load_widened<Arch>(tp), detail::load_widened<Arch>(td));
    }
  };
  // Pass 1: Σp, H = Σ p log p, Σ p·expm1(−a log p) (near α = 1) or the range of log p;
  // NaN or negative p poisons the result.
  B sp(0.0), h(0.0), se(0.0), lmin(0.0), lmax(-inf), bad(0.0);
  blocks([&](const B& pv, const B&) {
    const auto pos = pv > zero;
    bad += xsimd::select(pos || pv == zero, zero, one);
    const B l = detail::log_positive(xsimd::select(pos, pv, one));
    sp += pv;
    h += xsimd::select(pos, pv * l, zero);
    if (near_one) se += xsimd::select(pos, pv * detail::expm1_moderate(-va * l), zero);
    lmin = xsimd::min(lmin, xsimd::select(pos, l, zero));
    lmax = xsimd::max(lmax, xsimd::select(pos, l, -inf));
  });
  if (detail::reduce_add(bad) != 0.0) return std::numeric_limits<T>::quiet_NaN();
  const double hs = detail::reduce_add(h);
  const double lmx = detail::reduce_max(lmax);
  if (lmx == -std::numeric_limits<double>::infinity()) return T(0);  // no support: zero gradient
  double log_su;                                                     // log Σ_j p_j^{1−a}
  double mx = 0;  // shift of the log-sum-exp: the largest (1−a) log p
  if (near_one) {
    log_su = std::log1p(detail::reduce_add(se) + (detail::reduce_add(sp) - 1.0));
  } else {
    mx = (1.0 - a) * (a < 1.0 ? lmx : -detail::reduce_max(-lmin));
    const B vmx(mx), e(1.0 - a);
    B s(0.0);
    blocks([&](const B& pv, const B&) {
      const auto pos = pv > zero;
      const B l = detail::log_positive(xsimd::select(pos, pv, one));
      s += xsimd::select(pos, detail::exp_nonpositive(detail::fma(e, l, -vmx)), zero);
    });
    log_su = mx + std::log(detail::reduce_add(s));
  }
  // Pass 2: Σ dp_i [(p_i − ũ_i)/a² − (S_i − ũ_i H)/a].
  const B vls(log_su), vh(hs), e(1.0 - a);
  B g1(0.0), g2(0.0);
  blocks([&](const B& pv, const B& dv) {
    const auto pos = pv > zero;
    const B l = detail::log_positive(xsimd::select(pos, pv, one));
    B ut, diff;
    if (near_one) {
      const B r = detail::expm1_moderate(-va * l - vls);  // ũ/p − 1
      diff = -pv * r;
      ut = pv + pv * r;
    } else {
      ut = detail::exp_nonpositive(detail::fma(e, l, -vls));
      diff = pv - ut;
    }
    g1 += xsimd::select(pos, dv * diff, zero);
    g2 += xsimd::select(pos, dv * (pv * l - ut * vh), zero);
  });
  return static_cast<T>(detail::reduce_add(g1) / (a * a) - detail::reduce_add(g2) / a);
}

}  // namespace entmax
