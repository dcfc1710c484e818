// Threshold search for α-entmax with any α > 1: candidate filtering, Newton on the κ-norm with a
// bisection safeguard, stop on stagnation, then one output pass. Working precision is double.
//
// With d_i = (α−1)(z_i − max), a = α − 1 and κ = 1/a, the threshold τ solves
//   f(τ) = Σ_i (d_i − τ)_+^κ − 1 = 0,   τ ∈ [−1, −n^{−a}].
// f is decreasing. Any τ with f(τ) ≥ 0 is a lower bound of the root, so every d_i ≤ τ can be
// dropped from the candidates for good. Newton runs on g(τ) = (f(τ) + 1)^{1/κ} − 1, the κ-norm
// of (d − τ)_+ minus one: it is exact for a one-element support, and for κ ≥ 1 (α ≤ 2) g is
// convex, so Newton started from a lower bound stays a lower bound and never overshoots. For
// α > 2 a bracket [lo, hi] catches overshoots and falls back to bisection.
//
// Passes over a row: max (with NaN detection); candidate extraction (e = z − max for a·e > −1,
// in double); when that keeps much of the row, a counting pass over the candidates at a few
// levels t gives a tighter bound (c elements with d ≥ t force τ ≥ t − c^{−a}) and a compaction;
// then Newton iterations on the (shrinking) candidates; then one output pass that raises to
// the power κ only in blocks holding support elements. Powers: exact products for integer κ,
// √ for κ = ½, else exp(κ log x) with vectorised log/exp (x ≤ 1, so the exponent is ≤ 0).
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/candidates.hpp>
#include <entmax/detail/exp.hpp>
#include <entmax/detail/scratch.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/detail/widen.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace entmax::detail {

/// x = a·e − t, the one formula every pass uses (a fused multiply-subtract where the arch has
/// it), so that the candidate filter, the sums and the output agree bit for bit.
template <class Arch>
inline xsimd::batch<double, Arch> alpha_x(const xsimd::batch<double, Arch>& a,
                                          const xsimd::batch<double, Arch>& e,
                                          const xsimd::batch<double, Arch>& t) {
  return xsimd::fms(a, e, t);
}

/// log x for x > 0 (finite), double lanes: x = 2^k·m with m ∈ [√½, √2), log m = 2 atanh(s),
/// s = (m − 1)/(m + 1), by its odd series to s^21 (truncation < 6e-18 relative). About 1 ulp.
template <class A>
inline xsimd::batch<double, A> log_positive(const xsimd::batch<double, A>& x0) {
  using B = xsimd::batch<double, A>;
  using I = xsimd::batch<std::int64_t, A>;
  const auto sub = x0 < B(0x1p-1022);  // subnormal: scale into the normal range first
  const B x = xsimd::select(sub, x0 * B(0x1p54), x0);
  // Shift so that the exponent field rounds m into [√½, √2) (0x3fe6a09e667f3bcd is √½).
  const I ix = xsimd::bitwise_cast<I>(x) + I(0x3ff0000000000000 - 0x3fe6a09e667f3bcd);
  const B m = xsimd::bitwise_cast<B>((ix & I(0x000fffffffffffff)) + I(0x3fe6a09e667f3bcd));
  // k = exponent − 1023 as a double, via the 2^52 magic number.
  const B kd = xsimd::bitwise_cast<B>((ix >> 52) | I(0x4330000000000000)) - B(4503599627370496.0 + 1023.0) -
               xsimd::select(sub, B(54.0), B(0.0));
  const B s = (m - B(1.0)) / (m + B(1.0));
  const B s2 = s * s;
  B q(2.0 / 21);
  q = xsimd::fma(q, s2, B(2.0 / 19));
  q = xsimd::fma(q, s2, B(2.0 / 17));
  q = xsimd::fma(q, s2, B(2.0 / 15));
  q = xsimd::fma(q, s2, B(2.0 / 13));
  q = xsimd::fma(q, s2, B(2.0 / 11));
  q = xsimd::fma(q, s2, B(2.0 / 9));
  q = xsimd::fma(q, s2, B(2.0 / 7));
  q = xsimd::fma(q, s2, B(2.0 / 5));
  q = xsimd::fma(q, s2, B(2.0 / 3));
  const B logm = xsimd::fma(s * s2, q, B(2.0) * s);
  return xsimd::fma(kd, B(6.93147180369123816490e-01), xsimd::fma(kd, B(1.90821492927058770002e-10), logm));
}

/// log x for x > 0 (finite), float lanes: the same reduction as the double version, series to
/// s^11 (truncation < 4e-9 relative). About 1 ulp.
template <class A>
inline xsimd::batch<float, A> log_positive(const xsimd::batch<float, A>& x0) {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  const auto sub = x0 < B(0x1p-126f);
  const B x = xsimd::select(sub, x0 * B(0x1p24f), x0);
  const I ix = xsimd::bitwise_cast<I>(x) + I(0x3f800000 - 0x3f3504f3);
  const B m = xsimd::bitwise_cast<B>((ix & I(0x007fffff)) + I(0x3f3504f3));
  const B kd = xsimd::bitwise_cast<B>((ix >> 23) | I(0x4b000000)) - B(8388608.0f + 127.0f) -
               xsimd::select(sub, B(24.0f), B(0.0f));
  const B s = (m - B(1.0f)) / (m + B(1.0f));
  const B s2 = s * s;
  B q(2.0f / 11);
  q = xsimd::fma(q, s2, B(2.0f / 9));
  q = xsimd::fma(q, s2, B(2.0f / 7));
  q = xsimd::fma(q, s2, B(2.0f / 5));
  q = xsimd::fma(q, s2, B(2.0f / 3));
  const B logm = xsimd::fma(s * s2, q, B(2.0f) * s);
  return xsimd::fma(kd, B(0.693145751953125f), xsimd::fma(kd, B(1.428606765330187045e-06f), logm));
}

/// p^e for p ∈ [0, 1] and e > 0, T lanes: exp(e log p), exactly 0 at p = 0; NaN stays NaN.
template <class T, class A>
inline xsimd::batch<T, A> pow_unit(const xsimd::batch<T, A>& p, T e) {
  using B = xsimd::batch<T, A>;
  const auto pos = p > B(T(0));
  const B y = exp_nonpositive(B(e) * log_positive(xsimd::select(pos, p, B(T(1)))));
  return xsimd::select(pos, y, xsimd::select(xsimd::isnan(p), p, B(T(0))));
}

/// e^x − 1 for |x| ≤ 700, double lanes: Taylor to degree 13 for |x| < 0.35 (truncation
/// < 5e-18 relative), else e^x − 1 with e^x = 1/e^{−x} for x > 0. About 2 ulp.
template <class A>
inline xsimd::batch<double, A> expm1_moderate(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  B q(1.0 / 6227020800.0);
  q = xsimd::fma(q, x, B(1.0 / 479001600.0));
  q = xsimd::fma(q, x, B(1.0 / 39916800.0));
  q = xsimd::fma(q, x, B(1.0 / 3628800.0));
  q = xsimd::fma(q, x, B(1.0 / 362880.0));
  q = xsimd::fma(q, x, B(1.0 / 40320.0));
  q = xsimd::fma(q, x, B(1.0 / 5040.0));
  q = xsimd::fma(q, x, B(1.0 / 720.0));
  q = xsimd::fma(q, x, B(1.0 / 120.0));
  q = xsimd::fma(q, x, B(1.0 / 24.0));
  q = xsimd::fma(q, x, B(1.0 / 6.0));
  q = xsimd::fma(q, x, B(0.5));
  const B small = xsimd::fma(q, x * x, x);
  const auto pos = x > B(0.0);
  const B en = exp_nonpositive(xsimd::select(pos, -x, x));
  const B big = xsimd::select(pos, B(1.0) / en, en) - B(1.0);
  return xsimd::select(xsimd::abs(x) < B(0.35), small, big);
}

/// How x^κ is computed: the exponents with a cheaper exact formula than exp(κ log x).
enum class AlphaPowerKind { one, integer, half, general };

/// The cheapest kind for κ = 1/(α−1).
inline AlphaPowerKind alpha_power_kind(double kappa) {
  if (kappa == 1.0) return AlphaPowerKind::one;
  if (kappa == 0.5) return AlphaPowerKind::half;
  if (kappa >= 2.0 && kappa <= 16.0 && kappa == std::floor(kappa)) return AlphaPowerKind::integer;
  return AlphaPowerKind::general;
}

/// y = x^κ and y1 = x^{κ−1} on positive lanes (other lanes: unspecified, callers mask them).
template <AlphaPowerKind K, class Arch>
struct AlphaPower {
  using B = xsimd::batch<double, Arch>;
  double kappa;
  int ik;  // κ for AlphaPowerKind::integer

  void operator()(const B& x, B& y, B& y1) const {
    if constexpr (K == AlphaPowerKind::one) {
      y = x;
      y1 = B(1.0);
    } else if constexpr (K == AlphaPowerKind::integer) {
      B r = x;
      for (int j = 2; j < ik; ++j) r *= x;
      y1 = r;
      y = r * x;
    } else if constexpr (K == AlphaPowerKind::half) {
      y = xsimd::sqrt(x);
      y1 = y / x;
    } else {
      // x ≤ 1 (τ ≥ −1), so κ log x ≤ 0.
      y = exp_nonpositive(B(kappa) * log_positive(x));
      y1 = y / x;
    }
  }
  B pow(const B& x) const {
    B y, y1;
    (*this)(x, y, y1);
    return y;
  }
};

/// Σ x^κ, Σ x^{κ−1} and the count of x = a·c_i − τ > 0 over c[0, m), m a multiple of the batch
/// size (padding lanes hold −inf).
struct AlphaSums {
  double s0, s1;
  std::size_t count;
};

template <class Pow, class Arch>
inline AlphaSums alpha_sums(const double* c, std::size_t m, double alpha_a, double tau, const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const B t(tau), va(alpha_a), zero(0.0), one(1.0);
  // Σ x^κ decides τ: summed in double-double lanes so that τ does not depend on the order of
  // the candidates (a permuted row gives the same τ) nor on the SIMD width.
  RowSum<double, Arch> s0;
  B b0(0.0), b1(0.0), n0(0.0), n1(0.0);
  std::size_t i = 0;
  for (; i + 2 * W <= m; i += 2 * W) {
    const B x = alpha_x(va, B::load_unaligned(c + i), t);
    const B xx = alpha_x(va, B::load_unaligned(c + i + W), t);
    const auto mk = x > zero;
    const auto mm = xx > zero;
    if (xsimd::any(mk)) {
      B y, y1;
      pw(xsimd::select(mk, x, one), y, y1);
      s0.add(xsimd::select(mk, y, zero));
      b0 += xsimd::select(mk, y1, zero);
      n0 += xsimd::select(mk, one, zero);
    }
    if (xsimd::any(mm)) {
      B y, y1;
      pw(xsimd::select(mm, xx, one), y, y1);
      s0.add(xsimd::select(mm, y, zero));
      b1 += xsimd::select(mm, y1, zero);
      n1 += xsimd::select(mm, one, zero);
    }
  }
  for (; i < m; i += W) {
    const B x = alpha_x(va, B::load_unaligned(c + i), t);
    const auto mk = x > zero;
    B y, y1;
    pw(xsimd::select(mk, x, one), y, y1);
    s0.add(xsimd::select(mk, y, zero));
    b0 += xsimd::select(mk, y1, zero);
    n0 += xsimd::select(mk, one, zero);
  }
  return AlphaSums{s0.value(), reduce_add(b0 + b1), static_cast<std::size_t>(reduce_add(n0 + n1))};
}

/// Pads c[m, ...) with −inf up to a multiple of W; returns the padded length.
template <std::size_t W>
inline std::size_t pad_candidates(double* c, std::size_t m) {
  std::size_t mp = (m + W - 1) / W * W;
  for (std::size_t i = m; i < mp; ++i) c[i] = -std::numeric_limits<double>::infinity();
  return mp;
}

/// A lower bound of τ from counts, in one pass over the candidates e (no powers): if c elements
/// have d = a·e ≥ t then f(τ) ≥ c (t − τ)^κ − 1 ≥ 0 for every τ ≤ t − c^{−a}. Counts at J levels t
/// spaced geometrically on [−1, −n^{−a}] (the bracket of τ); returns the best bound (≥ lo).
template <class Arch>
inline double level_lower_bound(const double* c, std::size_t mp, std::size_t n, double a, double lo) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  constexpr int J = 8;
  double t[J], total[J];
  B cnt[J];
  for (int j = 0; j < J; ++j) {
    t[j] = -std::pow(static_cast<double>(n), -a * (j + 1) / J);
    total[j] = 0;
    cnt[j] = B(0.0);
  }
  const B va(a), one(1.0), zero(0.0);
  for (std::size_t i = 0; i < mp; i += W) {
    const B d = va * B::load_unaligned(c + i);
    for (int j = 0; j < J; ++j) cnt[j] += xsimd::select(d >= B(t[j]), one, zero);
  }
  for (int j = 0; j < J; ++j) {
    total[j] = reduce_add(cnt[j]);
    // Margin for the rounding of d here versus in the other passes.
    if (total[j] > 0) lo = std::max(lo, t[j] - std::pow(total[j], -a) - 1e-12);
  }
  return lo;
}

/// A T value θ ≤ m + t/a with margin: z ≤ θ guarantees a·(z − m) − t ≤ 0 in the double
/// passes, so blocks of T lanes below θ can be skipped without widening them.
template <class T>
inline T skip_threshold(double zmax, double a, double t) {
  double th = zmax + t / a;
  th -= 1e-12 * (std::fabs(zmax) + std::fabs(th)) + 1e-300;
  T v = static_cast<T>(th);
  if (static_cast<double>(v) > th) v = std::nextafter(v, -std::numeric_limits<T>::infinity());
  return v;
}

/// Writes e_i = z_i − m (in double, row order) for every i with a·e_i > lo to c; returns how
/// many. c must hold n + W doubles.
template <class T, class Arch>
inline std::size_t extract_candidates(const T* z, std::size_t n, double zmax, double a, double lo,
                                      double* c) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const B vm(zmax), va(a), vlo(lo), zero(0.0);
  using BT = xsimd::batch<T, Arch>;
  constexpr std::size_t WT = BT::size;  // a multiple of W
  const BT skip(skip_threshold<T>(zmax, a, lo));
  std::size_t w = 0, i = 0;
  auto block = [&](const T* src) {
    const B e = load_widened<Arch>(src) - vm;
    const auto mk = alpha_x(va, e, vlo) > zero;
    if (xsimd::all(mk)) {
      e.store_unaligned(c + w);
      w += W;
    } else if (xsimd::any(mk)) {
      w += compress_store(e, mk, c + w);
    }
  };
  for (; i + WT <= n; i += WT) {
    if (!xsimd::any(BT::load_unaligned(z + i) > skip)) continue;  // NaN-free: max was finite
    for (std::size_t j = 0; j < WT; j += W) block(z + i + j);
  }
  for (; i + W <= n; i += W) block(z + i);
  if (i < n) {
    T tz[W];
    for (std::size_t j = 0; j < W; ++j) tz[j] = j < n - i ? z[i + j] : -std::numeric_limits<T>::infinity();
    block(tz);
  }
  return w;
}

/// Keeps the c_i with a·c_i > lo of c[0, mp) (mp padded to a multiple of W), in order; returns
/// how many.
template <class Arch>
inline std::size_t compact_candidates(double* c, std::size_t mp, double a, double lo) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const B va(a), vlo(lo), zero(0.0);
  std::size_t w = 0;
  for (std::size_t i = 0; i < mp; i += W) {
    const B e = B::load_unaligned(c + i);
    w += compress_store(e, alpha_x(va, e, vlo) > zero, c + w);
  }
  return w;
}

/// The threshold and the normaliser Σ (d − τ)_+^κ evaluated at it.
struct AlphaThreshold {
  double tau;
  double sum;
};

/// Solves for τ on the candidates c[0, m) (m ≥ 1, at least one candidate > lo, f(lo) ≥ 0,
/// f(hi) ≤ 0). `tol` is the relative step size at which the iteration has converged.
template <class Pow, class Arch>
inline AlphaThreshold solve_alpha_threshold(double* c, std::size_t m, double a, double lo, double hi,
                                            double tol, const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t mp = pad_candidates<W>(c, m);
  double tau = lo;
  double prev_step = std::numeric_limits<double>::infinity();
  AlphaSums st{};
  for (int it = 0; it < 200; ++it) {
    st = alpha_sums<Pow, Arch>(c, mp, a, tau, pw);
    const double f = st.s0 - 1.0;
    if (f >= 0.0) {
      lo = tau;
      if (st.count * 4 < m * 3 && m > 4 * W) {  // drop what can no longer be in the support
        m = compact_candidates<Arch>(c, mp, a, lo);
        mp = pad_candidates<W>(c, m);
      }
      if (f == 0.0) break;
    } else {
      hi = tau;
    }
    double next;
    if (st.count == 0 || !(st.s1 > 0.0)) {
      next = lo + (hi - lo) * 0.5;
    } else {
      // Newton on g = s0^a − 1: τ ← τ + (s0 − s0^{1−a}) / s1.
      next = tau + (st.s0 - std::pow(st.s0, 1.0 - a)) / st.s1;
      const double step = std::fabs(next - tau);
      if (step <= tol * std::fabs(tau)) break;                           // converged
      if (step <= 0x1p-48 * std::fabs(tau) && step >= prev_step) break;  // stagnated in rounding noise
      prev_step = step;
      if (!(next > lo && next < hi)) next = lo + (hi - lo) * 0.5;
    }
    if (!(next > lo && next < hi)) break;  // bracket down to adjacent doubles
    tau = next;
  }
  return AlphaThreshold{tau, st.s0};
}

/// p_i = (d_i − τ)_+^κ / sum for the whole row, d_i = a (z_i − m) computed exactly as in
/// extract_candidates. Returns the number of non-zero outputs. z and p may alias.
template <class T, class Pow, class Arch>
inline std::size_t write_alpha_output(const T* z, T* p, std::size_t n, double zmax, double a, double tau,
                                      double sum, const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  // Smallest double that rounds to a non-zero T.
  const double tiny = std::is_same_v<T, float> ? 0x1p-150 : 0.0;
  const B vm(zmax), va(a), vt(tau), zero(0.0), one(1.0), inv(1.0 / sum), vtiny(tiny);
  B cnt(0.0);
  std::size_t i = 0;
  auto block = [&](const T* src, T* dst) {
    const B x = alpha_x(va, load_widened<Arch>(src) - vm, vt);
    const auto mk = x > zero;
    if (xsimd::any(mk)) {
      const B y = xsimd::select(mk, pw.pow(xsimd::select(mk, x, one)) * inv, zero);
      cnt += xsimd::select(y > vtiny, one, zero);
      store_narrowed<Arch>(dst, y);
    } else {
      store_narrowed<Arch>(dst, zero);
    }
  };
  using BT = xsimd::batch<T, Arch>;
  constexpr std::size_t WT = BT::size;
  const BT skip(skip_threshold<T>(zmax, a, tau)), zt(T(0));
  for (; i + WT <= n; i += WT) {
    if (!xsimd::any(BT::load_unaligned(z + i) > skip)) {
      zt.store_unaligned(p + i);
      continue;
    }
    for (std::size_t j = 0; j < WT; j += W) block(z + i + j, p + i + j);
  }
  for (; i + W <= n; i += W) block(z + i, p + i);
  if (i < n) {
    T tz[W], tp[W];
    for (std::size_t j = 0; j < W; ++j) tz[j] = j < n - i ? z[i + j] : -std::numeric_limits<T>::infinity();
    block(tz, tp);
    for (std::size_t j = 0; i + j < n; ++j) p[i + j] = tp[j];
  }
  return static_cast<std::size_t>(reduce_add(cnt));
}

/// α-entmax of a row with finite max `zmax` (not a special row), for one power kind.
template <class T, class Pow, class Arch>
inline double entmax_alpha_row(const T* z, T* p, std::size_t n, T zmax, double a, const Pow& pw,
                               std::size_t& support) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const double m = static_cast<double>(zmax);
  const double hi = 0.0;  // f(0) = −1 < 0; the root lies in [−1, −n^{−a}]
  double lo = -1.0;
  double* c = scratch<double>(n + 2 * W);
  std::size_t cnt = extract_candidates<T, Arch>(z, n, m, a, lo, c);
  if (cnt > 64 && cnt * 8 > n) {  // −1 filtered little: tighten the bound by counting levels
    const std::size_t mp = pad_candidates<W>(c, cnt);
    lo = level_lower_bound<Arch>(c, mp, n, a, lo);
    cnt = compact_candidates<Arch>(c, mp, a, lo);
  }
  // Convergence: Newton's step at τ estimates the error of τ. For float rows a relative error
  // of 2^-30/κ moves p by less than ε_float/8; double rows iterate down to rounding noise.
  const double tol = std::is_same_v<T, float> ? 0x1p-30 / std::max(1.0, 1.0 / a) : 0x1p-52;
  const AlphaThreshold th = solve_alpha_threshold<Pow, Arch>(c, cnt, a, lo, hi, tol, pw);
  support = write_alpha_output<T, Pow, Arch>(z, p, n, m, a, th.tau, th.sum, pw);
  return th.tau;
}

/// Σ_i (d_i − τ)_+^κ over the whole row, d_i = a (z_i − m) (from_stats renormalises with it).
template <class T, class Pow, class Arch>
inline double alpha_row_sum(const T* z, std::size_t n, double zmax, double a, double tau, const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const B vm(zmax), va(a), vt(tau), zero(0.0), one(1.0);
  RowSum<double, Arch> acc;  // double-double lanes, as in alpha_sums
  auto block = [&](const T* src) {
    const B x = alpha_x(va, load_widened<Arch>(src) - vm, vt);
    const auto mk = x > zero;
    if (xsimd::any(mk)) acc.add(xsimd::select(mk, pw.pow(xsimd::select(mk, x, one)), zero));
  };
  std::size_t i = 0;
  for (; i + W <= n; i += W) block(z + i);
  if (i < n) {
    T tz[W];
    for (std::size_t j = 0; j < W; ++j) tz[j] = j < n - i ? z[i + j] : -std::numeric_limits<T>::infinity();
    block(tz);
  }
  return acc.value();
}

/// Calls fn(pw) with the AlphaPower functor for κ = 1/a (one instantiation per power kind).
template <class Arch, class Fn>
inline decltype(auto) with_alpha_power(double a, Fn&& fn) {
  const double kappa = 1.0 / a;
  switch (alpha_power_kind(kappa)) {
    case AlphaPowerKind::one:
      return fn(AlphaPower<AlphaPowerKind::one, Arch>{kappa, 1});
    case AlphaPowerKind::integer:
      return fn(AlphaPower<AlphaPowerKind::integer, Arch>{kappa, static_cast<int>(kappa)});
    case AlphaPowerKind::half:
      return fn(AlphaPower<AlphaPowerKind::half, Arch>{kappa, 0});
    default:
      return fn(AlphaPower<AlphaPowerKind::general, Arch>{kappa, 0});
  }
}

}  // namespace entmax::detail
