// Exact thresholds τ of sparsemax and entmax-1.5 on a buffer of candidates (shifted, scaled
// scores x with max 0 that contains every support element). Both are Newton iterations from
// the left on the convex, decreasing f(τ) = Σ (x − τ)_+^β − 1 (β = 1: Michelot's algorithm),
// finished in closed form on the support and certified: the result τ satisfies
// {x > τ} = the support used to compute it.
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/candidates.hpp>
#include <entmax/detail/simd.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace entmax::detail {

/// τ in T: rounded to nearest, unless that falls below `floor` (the largest bound used to drop
/// candidates), then rounded up — so every dropped candidate stays ≤ τ_T, an exact zero.
template <class T>
inline T threshold_to(double tau, double floor) {
  T t = static_cast<T>(tau);
  if (static_cast<double>(t) < floor) {
    t = static_cast<T>(floor);
    if (static_cast<double>(t) < floor) t = std::nextafter(t, std::numeric_limits<T>::infinity());
  }
  return t;
}

/// Number of buf[0, k) strictly above t.
template <class T>
inline std::size_t count_above(const T* buf, std::size_t k, T t) {
  std::size_t c = 0;
  for (std::size_t i = 0; i < k; ++i) c += buf[i] > t;
  return c;
}

/// Whether every buf[0, k) is 0 (the candidates of entmax-1.5 are then ties at the max).
template <class T>
inline bool all_zero(const T* buf, std::size_t k) {
  for (std::size_t i = 0; i < k; ++i)
    if (buf[i] != T(0)) return false;
  return true;
}

/// Entmax-1.5 threshold of a support of k ties at the max (every x = 0, so each p = τ²): among
/// tau and its two neighbours (not below floor), the one whose rounded square is nearest 1/k.
/// Rounding τ to nearest alone can leave τ² two ulps from 1/k; this keeps tied mass within one ulp.
template <class T>
inline T entmax15_tied_top(std::size_t k, T tau, double floor) {
  const long double target = 1.0L / static_cast<long double>(k);
  auto miss = [&](T t) {
    const T sq = t * t;
    return std::fabs(static_cast<long double>(sq) - target);
  };
  T best = tau;
  for (T t : {std::nextafter(tau, T(0)), std::nextafter(tau, -std::numeric_limits<T>::infinity())})
    if (static_cast<double>(t) >= floor && miss(t) < miss(best)) best = t;
  return best;
}

/// Σ buf[0, k) − 1 and, centred on μ, Σ(x − μ) and Σ(x − μ)²: in double-double for double
/// rows (the result then depends on the set only), in double lanes for float rows (rounding far
/// below float resolution).
template <class T, class Arch>
inline double sum_minus_one(const T* buf, std::size_t k) {
  if constexpr (std::is_same_v<T, float>) {
    using B = xsimd::batch<float, Arch>;
    using BD = xsimd::batch<double, Arch>;
    constexpr std::size_t W = B::size;
    BD acc(0.0);
    std::size_t j = 0;
    for (; j + W <= k; j += W) add_to_double(acc, B::load_unaligned(buf + j));
    double s = reduce_add(acc) - 1.0;
    for (; j < k; ++j) s += static_cast<double>(buf[j]);
    return s;
  } else {
    CompensatedSum s;
    for (std::size_t j = 0; j < k; ++j) s.add(buf[j]);
    s.add(-1.0);
    return s.value();
  }
}
template <class T, class Arch>
inline void centred_moments(const T* buf, std::size_t k, double mu, double& s1, double& s2) {
  if constexpr (std::is_same_v<T, float>) {
    using B = xsimd::batch<float, Arch>;
    using BD = xsimd::batch<double, Arch>;
    constexpr std::size_t W = B::size;
    const BD m(mu);
    BD a1(0.0), a2(0.0);
    std::size_t j = 0;
    for (; j + W <= k; j += W) {
      BD lo, hi;
      split_to_double(B::load_unaligned(buf + j), lo, hi);
      lo = lo - m;
      hi = hi - m;
      a1 = a1 + (lo + hi);
      a2 = detail::fma(lo, lo, detail::fma(hi, hi, a2));
    }
    s1 = reduce_add(a1);
    s2 = reduce_add(a2);
    for (; j < k; ++j) {
      const double e = static_cast<double>(buf[j]) - mu;
      s1 += e;
      s2 += e * e;
    }
  } else {
    CompensatedSum c1, c2;
    for (std::size_t j = 0; j < k; ++j) {
      const double e = buf[j] - mu;
      c1.add(e);
      c2.add(e * e);
    }
    s1 = c1.value();
    s2 = c2.value();
  }
}

/// The threshold on a candidate support C = buf[0, k) (compacted in place; x_min its smallest
/// element), from `root`, a function of a set's values alone: root(C) when it lies below x_min.
/// Otherwise the level of elements at x_min is out of the support (p = 0 there): it leaves C
/// and the rest is settled the same way; τ is then the larger of the rest's root and the level
/// dropped last (the two agree up to rounding when the level sits exactly at the threshold).
/// τ so depends on the support's values only, never on the search path that reached it, and
/// shifting the scores by an exact constant gives bitwise the same p.
template <class T, class Root>
inline double settle_threshold(T* buf, std::size_t& k, T x_min, double& floor, const Root& root) {
  double t = root(buf, k);
  while (!(t < static_cast<double>(x_min))) {
    const std::size_t above =
        static_cast<std::size_t>(std::remove_if(buf, buf + k, [&](T x) { return !(x > x_min); }) - buf);
    if (above == 0) return t;  // one level of ties: cannot happen (its root lies below it)
    k = above;
    const T level = x_min;
    floor = std::max(floor, static_cast<double>(level));
    x_min = *std::min_element(buf, buf + k);
    t = root(buf, k);
    if (t < static_cast<double>(x_min)) return std::max(t, static_cast<double>(level));
  }
  return t;
}

/// Sparsemax root on a support buf[0, k): (Σx − 1)/k.
template <class T, class Arch>
inline double sparsemax_root(const T* buf, std::size_t k) {
  return sum_minus_one<T, Arch>(buf, k) / static_cast<double>(k);
}

/// A bound a little below an iterate τ of the searches: candidates are dropped only below it,
/// so an iterate rounded above a level of ties sitting exactly at the threshold never drops
/// that level (settle_threshold decides it on its values).
inline double below_iterate(double tau) {
  return tau - 16.0 * std::numeric_limits<double>::epsilon() * (1.0 + std::fabs(tau));
}

/// Sparsemax τ on candidates buf[0, k) (k ≥ 1, a superset of the support, max 0; compacted in
/// place). Michelot: τ ← (Σ_C x − 1)/|C|, C ← {x > τ}, until no value is dropped; the final
/// τ is recomputed from its support alone (settle_threshold). Returns τ; k becomes |C|, floor
/// the largest bound below which candidates were dropped.
template <class T, class Arch>
inline double sparsemax_threshold(T* buf, std::size_t& k, double& floor) {
  floor = -1.0;
  // τ ≥ −1 always (the max alone has mass 1 at τ = −1); clamping keeps x − τ small.
  double tau = std::max(-1.0, sum_minus_one<T, Arch>(buf, k) / static_cast<double>(k));
  for (;;) {  // each round drops at least one value or returns
    const double t = below_iterate(tau);
    const FilterSums<T> f = filter_sums<T, Arch>(buf, pad_to_batches<T, Arch>(buf, k), t);
    if (f.k == k) return settle_threshold(buf, k, f.min, floor, sparsemax_root<T, Arch>);  // C = {x > t}
    k = f.k;
    floor = t;
    tau = t + (f.sd - 1.0) / static_cast<double>(k);
  }
}

/// Entmax-1.5 root on a support buf[0, k): the closed form of Σ(x − τ)² = 1, recomputed around
/// the support's mean μ (so the result depends on the support only, not on the order): with
/// e = x − μ, τ = μ + (Σe − √((Σe)² + k(1 − Σe²)))/k. Centering removes the cancellation of
/// (Σd)² − kΣd² that sums taken around a distant τ suffer (about k·ε relative).
template <class T, class Arch>
inline double entmax15_root(const T* buf, std::size_t k) {
  const double kd = static_cast<double>(k);
  const double mu = (sum_minus_one<T, Arch>(buf, k) + 1.0) / kd;
  double S1 = 0.0, S2 = 0.0;
  centred_moments<T, Arch>(buf, k, mu, S1, S2);
  const double disc = kd * (1.0 - S2) + S1 * S1;
  return mu + (S1 - std::sqrt(disc > 0.0 ? disc : 0.0)) / kd;
}

/// Entmax-1.5 τ on candidates buf[0, k) with x = (z − max)/2 (k ≥ 1, a superset of the
/// support, max 0; compacted in place), from a known lower bound tau0 of τ: f(τ) = Σ (x − τ)_+²
/// − 1. Each pass sums d = x − τ over C = {x > τ}; if the root of the quadratic Σ_C (x − t)² = 1
/// lies below min C it is τ exactly (settle_threshold), else a Newton step (never past the
/// root: f is convex) shrinks C. Returns τ; k becomes |C|, floor the bound of the last filtering.
template <class T, class Arch>
inline double entmax15_threshold(T* buf, std::size_t& k, double& floor, double tau0 = -1.0) {
  constexpr double eps = std::numeric_limits<double>::epsilon();
  double tau = tau0 > -1.0 ? tau0 : -1.0;
  for (;;) {
    tau = below_iterate(tau);
    const FilterSums<T> f = filter_sums<T, Arch>(buf, pad_to_batches<T, Arch>(buf, k), tau);
    k = f.k;
    floor = tau;
    const double kd = static_cast<double>(k), sd = f.sd, sd2 = f.sd2;
    const double mn = static_cast<double>(f.min) - tau;
    const double disc = sd * sd - kd * (sd2 - 1.0);
    const double delta = (sd - std::sqrt(disc > 0.0 ? disc : 0.0)) / kd;
    // The root lies below min C (up to the rounding of delta, so that a level sitting exactly at
    // the threshold is settled on its values rather than by a Newton step that may cross it).
    if (delta >= 0.0 && delta < mn + 64.0 * eps * (1.0 + sd / kd))
      return settle_threshold(buf, k, f.min, floor, entmax15_root<T, Arch>);
    const double step = (sd2 - 1.0) / (2.0 * sd);
    if (!(step > 32.0 * eps * (1.0 + std::fabs(tau))))  // stagnation at the root
      return settle_threshold(buf, k, f.min, floor, entmax15_root<T, Arch>);
    tau += step;
  }
}

}  // namespace entmax::detail
