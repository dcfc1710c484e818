// Exact thresholds τ of sparsemax and entmax-1.5 on a buffer of candidates (shifted, scaled
// scores x with max 0 that contains every support element). Both are Newton iterations from
// the left on the convex, decreasing f(τ) = Σ (x − τ)_+^β − 1 (β = 1: Michelot's algorithm),
// finished in closed form on the support and certified: the result τ satisfies
// {x > τ} = the support used to compute it.
#pragma once

#include <entmax/detail/accumulate.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

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

/// Sparsemax τ on candidates buf[0, k) (k ≥ 1, all > −1, max 0; reordered and compacted in
/// place). Michelot: τ ← (Σ_C x − 1)/|C|, C ← {x > τ}, until C is stable. Returns τ (double);
/// k becomes the final |C|, floor the largest bound below which candidates were dropped.
template <class T>
inline double sparsemax_threshold(T* buf, std::size_t& k, double& floor) {
  floor = -1.0;
  CompensatedSum s;
  for (std::size_t i = 0; i < k; ++i) s.add(static_cast<double>(buf[i]));
  s.add(-1.0);
  double tau = s.value() / static_cast<double>(k);
  for (;;) {  // each round drops at least one element or returns
    std::size_t c = 0;
    s = CompensatedSum{};
    for (std::size_t i = 0; i < k; ++i) {
      const T x = buf[i];
      if (static_cast<double>(x) > tau) {
        buf[c++] = x;
        s.add(static_cast<double>(x));
      }
    }
    if (c == k) return tau;  // C = {x > τ}: τ is exact
    k = c;
    floor = tau;
    s.add(-1.0);
    tau = s.value() / static_cast<double>(c);
  }
}

/// The closed form on a certified support buf[0, k), recomputed around the support's mean μ
/// (so the result depends on the support only, not on the order or the search path):
/// with e = x − μ, τ = μ + (Σe − √((Σe)² + k(1 − Σe²)))/k. Centering removes the cancellation
/// of (Σd)² − kΣd² that sums taken around a distant τ suffer (about k·ε relative). Falls back
/// to `tau` if rounding would put τ at or above the smallest support element `x_min`.
template <class T>
inline double entmax15_centered(const T* buf, std::size_t k, double tau, double x_min) {
  CompensatedSum m1;
  for (std::size_t i = 0; i < k; ++i) m1.add(static_cast<double>(buf[i]));
  const double mu = m1.value() / static_cast<double>(k);  // depends only on the support, not on the path
  CompensatedSum s1, s2;
  for (std::size_t i = 0; i < k; ++i) {
    const double e = static_cast<double>(buf[i]) - mu;
    s1.add(e);
    s2.add(e * e);
  }
  const double kd = static_cast<double>(k), S1 = s1.value(), S2 = s2.value();
  const double disc = kd * (1.0 - S2) + S1 * S1;
  const double t = mu + (S1 - std::sqrt(disc > 0.0 ? disc : 0.0)) / kd;
  return t < x_min ? t : tau;
}

/// Entmax-1.5 τ on candidates buf[0, k) with x = (z − max)/2 (k ≥ 1, all > −1, max 0;
/// compacted in place), starting from a known lower bound tau0 ≥ −1 of τ: f(τ) = Σ (x − τ)_+² − 1. Each step
/// sums d = x − τ over C = {x > τ}; if the root of the quadratic Σ_C (x − t)² = 1 lies below min C it is τ
/// exactly, else a Newton step (never past the root: f is convex) shrinks C. Returns τ; k becomes |C|, floor
/// the bound of the last filtering.
template <class T>
inline double entmax15_threshold(T* buf, std::size_t& k, double& floor, double tau0 = -1.0) {
  double tau = tau0 > -1.0 ? tau0 : -1.0;
  for (;;) {
    std::size_t c = 0;
    CompensatedSum csd, csd2;
    double mn = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < k; ++i) {
      const T x = buf[i];
      const double d = static_cast<double>(x) - tau;
      if (d > 0.0) {
        buf[c++] = x;
        csd.add(d);
        csd2.add(d * d);
        mn = d < mn ? d : mn;
      }
    }
    const double sd = csd.value(), sd2 = csd2.value();
    k = c;
    floor = tau;
    const double kd = static_cast<double>(c);
    const double disc = sd * sd - kd * (sd2 - 1.0);
    const double delta = (sd - std::sqrt(disc > 0.0 ? disc : 0.0)) / kd;
    if (delta >= 0.0 && delta < mn) return entmax15_centered(buf, k, tau + delta, tau + mn);
    const double step = (sd2 - 1.0) / (2.0 * sd);
    if (!(step > 0.0) || tau + step == tau) return tau;  // stagnation at the root
    tau += step;
  }
}

}  // namespace entmax::detail
