// Deliberately naive long-double references for the row maps and their gradients: full sorts,
// long bisections and direct formulas, written for clarity, independent of the library's kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

namespace entmax_test::ref {

using Vec = std::vector<long double>;

template <class T>
Vec widen(const T* x, std::size_t n) {
  Vec v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<long double>(x[i]);
  return v;
}
template <class T>
Vec widen(const std::vector<T>& x) {
  return widen(x.data(), x.size());
}

namespace detail {
// Returns true and fills `out` for rows whose answer does not depend on the map:
// NaN / +inf present -> NaN row; every entry -inf -> zeros.
inline bool special(const Vec& z, Vec& out) {
  const long double inf = std::numeric_limits<long double>::infinity();
  bool bad = false, all_masked = true;
  for (long double v : z) {
    if (std::isnan(v) || v == inf) bad = true;
    if (v != -inf) all_masked = false;
  }
  if (bad) {
    out.assign(z.size(), std::numeric_limits<long double>::quiet_NaN());
    return true;
  }
  if (all_masked) {
    out.assign(z.size(), 0.0L);
    return true;
  }
  return false;
}
}  // namespace detail

/// softmax(z) = exp(z − max) / Σ exp(z − max), in long double.
inline Vec softmax(const Vec& z) {
  Vec p;
  if (detail::special(z, p)) return p;
  const long double m = *std::max_element(z.begin(), z.end());
  p.resize(z.size());
  long double s = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    p[i] = std::exp(z[i] - m);
    s += p[i];
  }
  for (auto& v : p) v /= s;
  return p;
}

/// sparsemax by full sort (Held et al. / Martins & Astudillo) on x = z − max: sort descending,
/// the support is the largest k with 1 + k·x_(k) > Σ_{j≤k} x_(j); τ = (Σ_{j≤k} x_(j) − 1)/k.
inline Vec sparsemax(const Vec& z) {
  Vec p;
  if (detail::special(z, p)) return p;
  // Shift by the max first: huge scores would otherwise lose the 1 of the simplex constraint.
  const long double m = *std::max_element(z.begin(), z.end());
  Vec x(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) x[i] = z[i] - m;
  Vec s = x;
  std::sort(s.begin(), s.end(), std::greater<long double>());
  long double cum = 0, tau = 0;
  for (std::size_t k = 1; k <= s.size(); ++k) {
    if (s[k - 1] == -std::numeric_limits<long double>::infinity()) break;
    cum += s[k - 1];
    const long double t = (cum - 1) / static_cast<long double>(k);
    if (s[k - 1] > t) tau = t;
  }
  p.resize(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) p[i] = std::max(x[i] - tau, 0.0L);
  return p;
}

/// 1.5-entmax by full sort (Peters et al. 2019, Algorithm 2) on x = z/2: for each k over the
/// sorted x, τ_k = mean_k − sqrt((1 − k(mean of squares_k − mean_k²))/k); the support is the
/// largest k with τ_k ≤ x_(k). p = [x − τ]_+².
inline Vec entmax15(const Vec& z) {
  Vec p;
  if (detail::special(z, p)) return p;
  const long double m = *std::max_element(z.begin(), z.end());
  Vec x(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) x[i] = (z[i] - m) / 2;
  Vec s = x;
  std::sort(s.begin(), s.end(), std::greater<long double>());
  long double cum = 0, cum2 = 0, tau = 0;
  for (std::size_t k = 1; k <= s.size(); ++k) {
    if (s[k - 1] == -std::numeric_limits<long double>::infinity()) break;
    cum += s[k - 1];
    cum2 += s[k - 1] * s[k - 1];
    const long double kk = static_cast<long double>(k);
    const long double mean = cum / kk, ss = kk * (cum2 / kk - mean * mean);
    const long double delta = (1 - ss) / kk;
    if (delta < 0) break;
    const long double t = mean - std::sqrt(delta);
    if (t <= s[k - 1]) tau = t;
  }
  p.resize(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) {
    const long double d = std::max(x[i] - tau, 0.0L);
    p[i] = d * d;
  }
  return p;
}

/// α-entmax (α > 1) by 300 bisection steps on τ in long double, then renormalised:
/// p_i = [(α−1)(z_i − max) − τ]_+^{1/(α−1)}, τ ∈ [−1, 0].
inline Vec entmax_bisect(const Vec& z, long double alpha) {
  Vec p;
  if (detail::special(z, p)) return p;
  const long double m = *std::max_element(z.begin(), z.end());
  const long double am1 = alpha - 1;
  auto mass = [&](long double tau, Vec* out) {
    long double s = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
      const long double d = am1 * (z[i] - m) - tau;
      const long double v = d > 0 ? std::pow(d, 1 / am1) : 0.0L;
      if (out) (*out)[i] = v;
      s += v;
    }
    return s;
  };
  long double lo = -1, hi = 0;
  for (int it = 0; it < 300; ++it) {
    const long double mid = (lo + hi) / 2;
    if (mass(mid, nullptr) >= 1)
      lo = mid;
    else
      hi = mid;
  }
  p.resize(z.size());
  const long double s = mass(lo, &p);
  for (auto& v : p) v /= s;
  return p;
}

/// The entmax-family vector-Jacobian product, for any α ≥ 1 (α = 1: softmax):
/// u_i = p_i^{2−α} for p_i > 0 (0 elsewhere), dz = u ⊙ dp − (⟨u, dp⟩ / Σu)·u.
/// Σu = 0 (no support) gives dz = 0.
inline Vec backward(const Vec& p, const Vec& dp, long double alpha) {
  Vec u(p.size(), 0.0L), dz(p.size(), 0.0L);
  long double su = 0, sud = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] > 0) {
      u[i] = std::pow(p[i], 2 - alpha);
      su += u[i];
      sud += u[i] * dp[i];
    }
  }
  if (su == 0) return dz;
  for (std::size_t i = 0; i < p.size(); ++i) dz[i] = u[i] * dp[i] - sud / su * u[i];
  return dz;
}

}  // namespace entmax_test::ref
