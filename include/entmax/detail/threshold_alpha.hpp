// Threshold search for α-entmax with any α > 1: candidate filtering, Newton on the κ-norm with a
// bisection safeguard, stop on stagnation, then one output pass. τ is decided in double.
//
// With d_i = (α−1)(z_i − max), a = α − 1 and κ = 1/a, the threshold τ solves
//   f(τ) = Σ_i (d_i − τ)_+^κ − 1 = 0,   τ ∈ [−1, −n^{−a}].
// f is decreasing. Any τ with f(τ) ≥ 0 is a lower bound of the root, so every d_i ≤ τ can be
// dropped from the candidates for good. Newton runs on g(τ) = (f(τ) + 1)^{1/κ} − 1, the κ-norm
// of (d − τ)_+ minus one: it is exact for a one-element support, and for κ ≥ 1 (α ≤ 2) g is
// convex, so Newton started from a lower bound stays a lower bound and never overshoots. For
// α > 2 a bracket [lo, hi] catches overshoots and falls back to bisection.
//
// Passes over a row: max (with NaN detection); extraction of the raw scores above −1 (the
// candidates; kept as T, so every double pass widens them exactly as the output pass does);
// when that keeps much of the row, a counting pass in T lanes at a few levels t gives a
// tighter bound (c elements with d ≥ t force τ ≥ t − c^{−a}) and a compaction; for float rows
// with α ≤ 2, Newton in float lanes, which only chooses where the double iteration starts (one
// or two double steps then reach the tolerance); Newton in double on the (shrinking)
// candidates; then one output pass that raises to the power κ only in blocks holding support
// elements. Powers: exact products for integer κ, √ for κ = ½, else exp(κ log x) with
// vectorised log/exp (x ≤ 1, so the exponent is ≤ 0).
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
template <class V, class Arch>
inline xsimd::batch<V, Arch> alpha_x(const xsimd::batch<V, Arch>& a, const xsimd::batch<V, Arch>& e,
                                     const xsimd::batch<V, Arch>& t) {
  return detail::fma(a, e, -t);
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
  q = detail::fma(q, s2, B(2.0 / 19));
  q = detail::fma(q, s2, B(2.0 / 17));
  q = detail::fma(q, s2, B(2.0 / 15));
  q = detail::fma(q, s2, B(2.0 / 13));
  q = detail::fma(q, s2, B(2.0 / 11));
  q = detail::fma(q, s2, B(2.0 / 9));
  q = detail::fma(q, s2, B(2.0 / 7));
  q = detail::fma(q, s2, B(2.0 / 5));
  q = detail::fma(q, s2, B(2.0 / 3));
  const B logm = detail::fma(s * s2, q, B(2.0) * s);
  return detail::fma(kd, B(6.93147180369123816490e-01), detail::fma(kd, B(1.90821492927058770002e-10), logm));
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
  q = detail::fma(q, s2, B(2.0f / 9));
  q = detail::fma(q, s2, B(2.0f / 7));
  q = detail::fma(q, s2, B(2.0f / 5));
  q = detail::fma(q, s2, B(2.0f / 3));
  const B logm = detail::fma(s * s2, q, B(2.0f) * s);
  return detail::fma(kd, B(0.693145751953125f), detail::fma(kd, B(1.428606765330187045e-06f), logm));
}

/// p^e for p ∈ [0, 1] and e > 0, T lanes: exp(e log p), exactly 0 at p = 0; NaN stays NaN.
template <class T, class A>
inline xsimd::batch<T, A> pow_unit(const xsimd::batch<T, A>& p, T e) {
  using B = xsimd::batch<T, A>;
  const auto pos = p > B(T(0));
  const B y = exp_nonpositive(B(e) * log_positive(xsimd::select(pos, p, B(T(1)))));
  return xsimd::select(pos, y, xsimd::select(xsimd::isnan(p), p, B(T(0))));
}

/// e^x − 1 for |x| ≤ 700, double lanes: expm1_taylor for |x| < 0.35, else e^x − 1 with
/// e^x = 1/e^{−x} for x > 0. About 2 ulp.
template <class A>
inline xsimd::batch<double, A> expm1_moderate(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  const B small = expm1_taylor(x);
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

/// y = x^κ and y1 = x^{κ−1} on positive lanes (other lanes: unspecified, callers mask them), in
/// double lanes or, for the float search phase, in float lanes.
template <AlphaPowerKind K, class Arch>
struct AlphaPower {
  double kappa;
  int ik;  // κ for AlphaPowerKind::integer

  template <class V>
  void operator()(const xsimd::batch<V, Arch>& x, xsimd::batch<V, Arch>& y, xsimd::batch<V, Arch>& y1) const {
    using B = xsimd::batch<V, Arch>;
    if constexpr (K == AlphaPowerKind::one) {
      y = x;
      y1 = B(V(1));
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
      y = exp_nonpositive(B(static_cast<V>(kappa)) * log_positive(x));
      y1 = y / x;
    }
  }
  template <class V>
  xsimd::batch<V, Arch> pow(const xsimd::batch<V, Arch>& x) const {
    xsimd::batch<V, Arch> y, y1;
    (*this)(x, y, y1);
    return y;
  }
  /// y = x^κ, y1 = x^{κ−1} and y2 = x^{κ−2} (y2 unused when κ = 1), for Halley steps.
  template <class V>
  void with_second(const xsimd::batch<V, Arch>& x, xsimd::batch<V, Arch>& y, xsimd::batch<V, Arch>& y1,
                   xsimd::batch<V, Arch>& y2) const {
    using B = xsimd::batch<V, Arch>;
    if constexpr (K == AlphaPowerKind::integer) {
      y2 = ik > 2 ? x : B(V(1));
      for (int j = 3; j < ik; ++j) y2 *= x;
      y1 = y2 * x;
      y = y1 * x;
    } else if constexpr (K == AlphaPowerKind::one) {
      y = x;
      y1 = B(V(1));
      y2 = B(V(0));
    } else {
      (*this)(x, y, y1);
      y2 = y1 / x;
    }
  }
};

/// Σ x^κ, Σ x^{κ−1}, the count of x = a·(c_i − m) − τ > 0 over the candidates and, for Halley
/// steps, Σ x^{κ−2} (else 0).
struct AlphaSums {
  double s0, s1;
  std::size_t count;
  double s2;
};

/// acc += y on the lanes of mk (one merge-masked add where the arch has them).
template <class V, class Arch>
inline void masked_add(xsimd::batch<V, Arch>& acc, const xsimd::batch_bool<V, Arch>& mk,
                       const xsimd::batch<V, Arch>& y) {
  acc = xsimd::select(mk, acc + y, acc);
}

/// The sums in double over the candidate scores c[0, mp) (T values, mp a multiple of two T
/// batches, padding −inf), e = c − m widened exactly as in the output pass. Lanes with x ≤ 0
/// may compute garbage powers; only the lanes with x > 0 are added. Compensated: Σ x^κ in
/// double-double lanes, so that τ does not depend on the order of the candidates (a permuted
/// row gives the same τ) nor on the SIMD width; otherwise plain double lanes, 2^29 times finer
/// than a float row needs.
template <class T, bool Compensated, class Pow, class Arch>
inline AlphaSums alpha_sums(const T* c, std::size_t mp, double zmax, double alpha_a, double tau,
                            const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const B vm(zmax), t(tau), va(alpha_a), zero(0.0), one(1.0);
  // Two accumulators of each kind halve the latency chains.
  RowSum<double, Arch> r0, r1;
  B a0(0.0), a1(0.0), b0(0.0), b1(0.0), n0(0.0), n1(0.0);
  auto add = [&](const B& x, RowSum<double, Arch>& r, B& s, B& b, B& cnt) {
    const auto mk = x > zero;
    if (xsimd::any(mk)) {
      B y, y1;
      pw(x, y, y1);
      if constexpr (Compensated) {
        r.add(xsimd::select(mk, y, zero));
      } else {
        masked_add(s, mk, y);
      }
      masked_add(b, mk, y1);
      masked_add(cnt, mk, one);
    }
  };
  std::size_t i = 0;
  for (; i < mp; i += 2 * W) {
    add(alpha_x(va, load_widened<Arch>(c + i) - vm, t), r0, a0, b0, n0);
    add(alpha_x(va, load_widened<Arch>(c + i + W) - vm, t), r1, a1, b1, n1);
  }
  double s0;
  if constexpr (Compensated) {
    r0.add(r1.hi);  // exact merge: both halves of the second accumulator
    r0.add(r1.lo);
    s0 = r0.value();
  } else {
    s0 = reduce_add(a0 + a1);
  }
  return AlphaSums{s0, reduce_add(b0 + b1), static_cast<std::size_t>(reduce_add(n0 + n1)), 0.0};
}

/// Σ x^κ, Σ x^{κ−1} and Σ x^{κ−2} (count not computed) in float lanes (e = c − m and x in
/// float), for the search phase of float rows: about 1e-6 relative, twice the lanes of double
/// and cheaper powers. Partial sums are taken over short chunks and added in double, so the
/// error does not grow with the row length.
template <class Pow, class Arch>
inline AlphaSums alpha_sums_float(const float* c, std::size_t mp, float zmax, double alpha_a, double tau,
                                  const Pow& pw) {
  using B = xsimd::batch<float, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t chunk = 8 * W;
  const B vm(zmax), t(static_cast<float>(tau)), va(static_cast<float>(alpha_a)), zero(0.0f);
  double s0 = 0, s1 = 0, s2 = 0;
  auto add = [&](const B& x, B& sum0, B& sum1, B& sum2) {
    const auto mk = x > zero;
    if (xsimd::any(mk)) {
      B y, y1, y2;
      pw.with_second(x, y, y1, y2);
      masked_add(sum0, mk, y);
      masked_add(sum1, mk, y1);
      masked_add(sum2, mk, y2);
    }
  };
  for (std::size_t i = 0; i < mp; i += chunk) {  // mp is a multiple of 2W
    B a0 = zero, a1 = zero, b0 = zero, b1 = zero, d0 = zero, d1 = zero;
    const std::size_t end = std::min(mp, i + chunk);
    for (std::size_t j = i; j < end; j += 2 * W) {
      add(alpha_x(va, B::load_unaligned(c + j) - vm, t), a0, b0, d0);
      add(alpha_x(va, B::load_unaligned(c + j + W) - vm, t), a1, b1, d1);
    }
    s0 += reduce_add(a0 + a1);
    s1 += reduce_add(b0 + b1);
    s2 += reduce_add(d0 + d1);
  }
  return AlphaSums{s0, s1, 0, s2};
}

/// Pads c[m, ...) with −inf up to a multiple of W; returns the padded length.
template <std::size_t W, class T>
inline std::size_t pad_candidates(T* c, std::size_t m) {
  std::size_t mp = (m + W - 1) / W * W;
  for (std::size_t i = m; i < mp; ++i) c[i] = -std::numeric_limits<T>::infinity();
  return mp;
}

/// Largest T θ below lo/a with margin: a·(z − m) > lo in the double passes implies z − m > θ
/// when z − m is rounded to T (rounding is monotone), so filtering z − m > θ in T lanes keeps a
/// superset of the elements above lo. Depends on z only through z − m (shift invariance).
template <class T>
inline T candidate_threshold(double a, double lo) {
  const double th = lo / a;
  const T r = round_down<T>(th - 1e-12 * std::fabs(th) - 1e-300);
  return std::nextafter(r, -std::numeric_limits<T>::infinity());
}

/// Copies the scores z_i with z_i − m > θ (in T) to c in row order and returns how many; c
/// needs n + one T batch of room and may be z itself (compaction in place). Candidates stay raw
/// scores, so the double passes compute e = z − m exactly as the output pass does.
template <class T, class Arch>
inline std::size_t extract_candidates(const T* z, std::size_t n, T zmax, T theta, T* c) {
  using BT = xsimd::batch<T, Arch>;
  constexpr std::size_t WT = BT::size;
  const BT vm(zmax), th(theta);
  std::size_t w = 0, i = 0;
  for (; i + WT <= n; i += WT) {
    const BT v = BT::load_unaligned(z + i);
    const auto mk = v - vm > th;
    if (xsimd::all(mk)) {
      v.store_unaligned(c + w);
      w += WT;
    } else if (xsimd::any(mk)) {
      w += compress_store(v, mk, c + w);
    }
  }
  for (; i < n; ++i)
    if (z[i] - zmax > theta) c[w++] = z[i];
  return w;
}

/// total[j] = #{i : c_i − m ≥ level[j]} for j < K, over every `stride`-th batch of c[0, mp).
template <std::size_t K, class T, class Arch>
inline void count_levels(const T* c, std::size_t mp, std::size_t stride, T zmax, const T* level,
                         double* total) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t chunk = std::size_t(1) << 16;  // lane counts stay exact in T
  const B vm(zmax), one(T(1));
  B lv[K];
  for (std::size_t j = 0; j < K; ++j) lv[j] = B(level[j]), total[j] = 0;
  for (std::size_t i = 0; i < mp;) {
    B cnt[K];
    for (std::size_t j = 0; j < K; ++j) cnt[j] = B(T(0));
    const std::size_t end = std::min(mp, i + chunk);
    for (; i < end; i += stride * W) {
      const B e = B::load_unaligned(c + i) - vm;
      for (std::size_t j = 0; j < K; ++j) masked_add(cnt[j], e >= lv[j], one);
    }
    for (std::size_t j = 0; j < K; ++j) total[j] += static_cast<double>(reduce_add(cnt[j]));
  }
}

/// A lower bound of τ from counts in T lanes (no powers): if k elements have d = a·(z − m) ≥ t
/// then f(τ) ≥ k (t − τ)^κ − 1 ≥ 0 for every τ ≤ t − k^{−a}. Counts z − m ≥ L_j (in T), L_j the
/// smallest T ≥ t_j/a, at J levels t_j spaced geometrically on [−1, −n^{−a}] (the bracket of
/// τ); returns the best bound (≥ lo). With `sampled` and many candidates, the counts at all
/// levels on every 8th batch only pick the promising levels and the full count runs at those
/// three: cheaper, but the bound then depends on the order of the candidates.
template <class T, class Arch>
inline double level_lower_bound(const T* c, std::size_t mp, std::size_t n, T zmax, double a, double lo,
                                bool sampled) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr int J = 8;
  T level[J];
  double t[J];
  constexpr double eps = std::numeric_limits<T>::epsilon();
  for (int j = 0; j < J; ++j) {
    const double th = -std::pow(static_cast<double>(n), -a * (j + 1) / J) / a;
    level[j] = static_cast<T>(th);
    if (static_cast<double>(level[j]) < th)
      level[j] = std::nextafter(level[j], std::numeric_limits<T>::infinity());
    // A counted element has z − m ≥ L_j (1 + ε) before rounding (L_j < 0), and the double
    // passes round d once more; this and the margin below cover both.
    t[j] = a * static_cast<double>(level[j]) * (1 + eps);
  }
  double total[J];
  if (!sampled || mp < 64 * W) {
    count_levels<J, T, Arch>(c, mp, 1, zmax, level, total);
    for (int j = 0; j < J; ++j)
      if (total[j] > 0) lo = std::max(lo, t[j] - std::pow(total[j], -a) - 1e-12);
    return lo;
  }
  constexpr std::size_t sample = 8;
  count_levels<J, T, Arch>(c, mp, sample, zmax, level, total);
  int best = 0;
  double best_bound = -std::numeric_limits<double>::infinity();
  for (int j = 0; j < J; ++j) {  // a level with few sampled elements gives no estimate
    const double estimate = t[j] - std::pow(static_cast<double>(sample) * total[j], -a);
    if (total[j] >= 8 && estimate > best_bound) best = j, best_bound = estimate;
  }
  const int j0 = std::min(std::max(0, best - 1), J - 3);
  count_levels<3, T, Arch>(c, mp, 1, zmax, level + j0, total);
  for (int j = 0; j < 3; ++j)
    if (total[j] > 0) lo = std::max(lo, t[j0 + j] - std::pow(total[j], -a) - 1e-12);
  return lo;
}

/// The threshold and the normaliser Σ (d − τ)_+^κ evaluated at it; `next` is the Newton
/// estimate from the last sums (τ itself when the search ended otherwise).
struct AlphaThreshold {
  double tau;
  double sum;
  double next;
  std::size_t count;  // of x > 0 at τ
};

/// Newton (Halley when the sums carry s2) on g(τ) = s0(τ)^a − 1 from τ ∈ [lo, hi) with a
/// bisection safeguard, f(lo) ≥ 0 ≥ f(hi).
/// sums(τ) gives the AlphaSums at τ; raised(lo, count) is told each new lower bound (to drop
/// candidates). Stops when the relative step is ≤ tol, stagnates in rounding noise, or after
/// max_iter evaluations.
template <bool Halley, class Sums, class Raised>
inline AlphaThreshold newton_alpha(double tau, double lo, double hi, double a, double tol, int max_iter,
                                   Sums&& sums, Raised&& raised) {
  double prev_step = std::numeric_limits<double>::infinity();
  double next = tau;
  AlphaSums st{};
  for (int it = 0; it < max_iter; ++it) {
    st = sums(tau);
    next = tau;
    const double f = st.s0 - 1.0;
    if (f >= 0.0) {
      lo = tau;
      raised(lo, st.count);
      if (f == 0.0) break;
    } else {
      hi = tau;
    }
    if (!(st.s1 > 0.0)) {  // no x > 0 (or all x^{κ−1} underflowed)
      next = lo + (hi - lo) * 0.5;
    } else {
      // Newton on g = s0^a − 1: τ ← τ + (s0 − s0^{1−a}) / s1.
      next = tau + (st.s0 - std::pow(st.s0, 1.0 - a)) / st.s1;
      if constexpr (Halley) {
        // g' = −s0^{a−1} s1, g'' = (a−1)κ s0^{a−2} s1² + (κ−1) s0^{a−1} s2 (κ = 1/a);
        // τ ← τ − 2 g g' / (2 g'² − g g'') where the denominator is positive.
        const double sa = std::pow(st.s0, a), kappa = 1.0 / a;
        const double g = sa - 1.0, g1 = -sa / st.s0 * st.s1;
        const double g2 =
            (a - 1.0) * kappa * sa / (st.s0 * st.s0) * st.s1 * st.s1 + (kappa - 1.0) * sa / st.s0 * st.s2;
        const double den = 2.0 * g1 * g1 - g * g2;
        if (den > 0.0) next = tau - 2.0 * g * g1 / den;
      }
      const double step = std::fabs(next - tau);
      if (step <= tol * std::fabs(tau)) break;                           // converged
      if (step <= 0x1p-48 * std::fabs(tau) && step >= prev_step) break;  // stagnated in rounding noise
      prev_step = step;
      if (!(next > lo && next < hi)) next = lo + (hi - lo) * 0.5;
    }
    if (!(next > lo && next < hi)) {  // bracket down to adjacent doubles
      next = tau;
      break;
    }
    tau = next;
  }
  return AlphaThreshold{tau, st.s0, next, st.count};
}

/// For α > 2 an ulp of τ can move p at the support boundary by far more than an ulp, so the
/// search's end point `at` (any point near the root) is settled on the one pair of adjacent
/// doubles t < t⁺ with s0(t) ≥ 1 > s0(t⁺), by steps of doubling ulps and then halving: each
/// sums(t) is order-free, so every order of the scores ends at the same τ = t. Usually one or
/// two more sums.
template <class Sums>
inline AlphaThreshold settle_alpha_root(const AlphaThreshold& at, Sums&& sums) {
  auto eval = [&](double t) {
    const AlphaSums st = sums(t);
    return AlphaThreshold{t, st.s0, t, st.count};
  };
  AlphaThreshold lo = at, hi = at;  // s0 decreases in τ: s0 ≥ 1 marks the lower side
  const bool below = at.sum >= 1.0;
  double step = std::fabs(std::nextafter(at.tau, 0.0) - at.tau);
  for (int it = 0; it < 2200; ++it) {  // f(0) < 0 ≤ f(−1): the doubling steps cross the root
    const AlphaThreshold e = eval(below ? lo.tau + step : hi.tau - step);
    if ((e.sum >= 1.0) != below) {
      (below ? hi : lo) = e;
      break;
    }
    (below ? lo : hi) = e;
    step *= 2.0;
  }
  for (int it = 0; it < 2200; ++it) {
    const double mid = lo.tau + (hi.tau - lo.tau) * 0.5;
    if (!(mid > lo.tau && mid < hi.tau)) break;
    const AlphaThreshold e = eval(mid);
    (e.sum >= 1.0 ? lo : hi) = e;
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

/// p = (a·(z − m) − τ)_+^κ / sum for W scores, d = a (z − m) computed exactly as in alpha_sums,
/// in double and rounded once to T; counts the p that stay non-zero in T.
template <class T, class Pow, class Arch>
struct AlphaOutputBlock {
  using B = xsimd::batch<double, Arch>;
  const Pow& pw;
  B vm, va, vt, inv;
  B count = B(0.0);

  void operator()(const T* src, T* dst) {
    // Smallest double that rounds to a non-zero T.
    const B zero(0.0), one(1.0), tiny(std::is_same_v<T, float> ? 0x1p-150 : 0.0);
    const B x = alpha_x(va, load_widened<Arch>(src) - vm, vt);
    const auto mk = x > zero;
    if (xsimd::any(mk)) {
      const B y = xsimd::select(mk, pw.pow(xsimd::select(mk, x, one)) * inv, zero);
      count += xsimd::select(y > tiny, one, zero);
      store_narrowed<Arch>(dst, y);
    } else {
      store_narrowed<Arch>(dst, zero);
    }
  }
};

/// p_i = (d_i − τ)_+^κ / sum for the whole row. Returns the number of non-zero outputs. z and p
/// may alias.
template <class T, class Pow, class Arch>
inline std::size_t write_alpha_output(const T* z, T* p, std::size_t n, double zmax, double a, double tau,
                                      double sum, const Pow& pw) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  AlphaOutputBlock<T, Pow, Arch> block{pw, B(zmax), B(a), B(tau), B(1.0 / sum)};
  std::size_t i = 0;
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
  return static_cast<std::size_t>(reduce_add(block.count));
}

/// Whether write_alpha_output_listed exists for T on Arch (float rows on AVX-512).
template <class T, class Arch>
inline constexpr bool has_listed_alpha_output =
#if XSIMD_WITH_AVX512F
    std::is_same_v<T, float>&& std::is_base_of_v<xsimd::avx512f, Arch>;
#else
    false;
#endif

/// write_alpha_output for a support much smaller than the row. Branches on where the support
/// lies mispredict there, so one pass without them writes zeros and lists the scores with
/// z − m > θ (θ = candidate_threshold(a, τ): a superset of the support) with their indices, in
/// vals and idx (n + 16 entries each); then p is computed for the listed scores alone, exactly
/// as write_alpha_output does. z and p may alias.
template <class T, class Pow, class Arch>
inline std::size_t write_alpha_output_listed(const T* z, T* p, std::size_t n, T zmax, double a, double tau,
                                             double sum, const Pow& pw, T* vals, std::uint32_t* idx) {
  static_assert(has_listed_alpha_output<T, Arch>);
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t k = 0;
#if XSIMD_WITH_AVX512F
  std::size_t i = 0;
  const T theta = candidate_threshold<T>(a, tau);
  const __m512 vm = _mm512_set1_ps(zmax), th = _mm512_set1_ps(theta), zero = _mm512_setzero_ps();
  const __m512i step = _mm512_set1_epi32(16);
  __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(z + i);
    const __mmask16 mk = _mm512_cmp_ps_mask(_mm512_sub_ps(v, vm), th, _CMP_GT_OQ);
    // Compress into registers, then plain stores (the memory form is slow on some cores).
    _mm512_storeu_ps(vals + k, _mm512_maskz_compress_ps(mk, v));
    _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(mk, iv));
    _mm512_storeu_ps(p + i, zero);
    k += static_cast<std::size_t>(__builtin_popcount(mk));
    iv = _mm512_add_epi32(iv, step);
  }
  for (; i < n; ++i) {
    const T v = z[i];
    if (v - zmax > theta) vals[k] = v, idx[k++] = static_cast<std::uint32_t>(i);
    p[i] = T(0);
  }
#endif
  pad_candidates<W>(vals, k);
  AlphaOutputBlock<T, Pow, Arch> block{pw, B(static_cast<double>(zmax)), B(a), B(tau), B(1.0 / sum)};
  T out[W];
  for (std::size_t j = 0; j < k; j += W) {
    block(vals + j, out);
    for (std::size_t l = 0; l < W && j + l < k; ++l) p[idx[j + l]] = out[l];
  }
  return static_cast<std::size_t>(reduce_add(block.count));
}

/// α-entmax of a row with finite max `zmax` (not a special row), for one power kind.
template <class T, class Pow, class Arch>
inline double entmax_alpha_row(const T* z, T* p, std::size_t n, T zmax, double a, const Pow& pw,
                               std::size_t& support) {
  constexpr std::size_t WT = xsimd::batch<T, Arch>::size;
  const double m = static_cast<double>(zmax);
  const double hi = 0.0;  // f(0) = −1 < 0; the root lies in [−1, −n^{−a}]
  // Float rows with α ≤ 2 take cheaper steps that depend on the order of the scores (sampled
  // levels, a float-lane search, plain double sums), harmless at their tolerance. Double rows,
  // and α > 2 where p at the support boundary is ill-conditioned, keep every step order-free,
  // so that a permuted row gives the same τ.
  const bool float_search = std::is_same_v<T, float> && a <= 1.0;
  double lo = -1.0;
  T* c = scratch<T>(n + 3 * WT);
  std::size_t cnt = extract_candidates<T, Arch>(z, n, zmax, candidate_threshold<T>(a, lo), c);
  std::size_t mp = pad_candidates<2 * WT>(c, cnt);
  if (cnt > 64 && cnt * 8 > n) {  // −1 filtered little: tighten the bound by counting levels
    lo = level_lower_bound<T, Arch>(c, mp, n, zmax, a, lo, float_search);
    cnt = extract_candidates<T, Arch>(c, mp, zmax, candidate_threshold<T>(a, lo), c);
    mp = pad_candidates<2 * WT>(c, cnt);
  }
  // Convergence: Newton's step at τ estimates the error of τ. For float rows with α ≤ 2 a
  // relative error of 2^-30·(α − 1) moves p by less than ε_float/8. For α > 2 an error δτ moves
  // p_i by κ p_i^{1−a} δτ, unbounded towards the support boundary: those rows, like double
  // rows, iterate down to rounding noise, so that a permuted row ends at the same τ.
  const double tol = std::is_same_v<T, float> && a <= 1.0 ? 0x1p-30 * a : 0x1p-52;
  auto solve = [&](auto compensated, double start) {
    return newton_alpha<false>(
        start, lo, hi, a, tol, 200,
        [&](double t) { return alpha_sums<T, decltype(compensated)::value, Pow, Arch>(c, mp, m, a, t, pw); },
        [&](double raised_lo, std::size_t count) {
          if (count * 4 < cnt * 3 && cnt > 4 * WT) {  // drop what can no longer be in the support
            cnt = extract_candidates<T, Arch>(c, mp, zmax, candidate_threshold<T>(a, raised_lo), c);
            mp = pad_candidates<2 * WT>(c, cnt);
          }
        });
  };
  // The float-lane search: only its end point is used, as the start of the double iteration,
  // just below it so that the first double step usually certifies a lower bound. It stops at a
  // Halley step of 2^-7 relative: the estimate after that step is typically within 1e-6.
  double start = lo;
  if constexpr (std::is_same_v<T, float>) {
    if (float_search) {
      const AlphaThreshold guess = newton_alpha<true>(
          lo, lo, hi, a, 0x1p-7, 16,
          [&](double t) { return alpha_sums_float<Pow, Arch>(c, mp, zmax, a, t, pw); },
          [](double, std::size_t) {});
      start = std::max(lo, guess.next - 0x1p-18 * std::fabs(guess.next));
    }
  }
  AlphaThreshold th = float_search ? solve(std::false_type{}, start) : solve(std::true_type{}, start);
  if (a > 1.0) {
    th = settle_alpha_root(th, [&](double t) { return alpha_sums<T, true, Pow, Arch>(c, mp, m, a, t, pw); });
  }
  if constexpr (has_listed_alpha_output<T, Arch>) {
    // Between these densities the skipping branches of write_alpha_output are unpredictable;
    // sparser supports skip almost every block, denser ones fill almost every block.
    if (th.count * 100 > n && th.count * 4 <= n && n < (std::size_t(1) << 32)) {
      support = write_alpha_output_listed<T, Pow, Arch>(z, p, n, zmax, a, th.tau, th.sum, pw, c,
                                                        scratch<std::uint32_t>(n + 16));
      return th.tau;
    }
  }
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
