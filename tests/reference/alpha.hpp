// Naive long-double reference for α-entmax with any α > 1, its backward and its α-gradient.
// Deliberately simple: full-row bisection to the last bit of long double, no filtering, no SIMD.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace ref_alpha {

using ld = long double;

/// Result of the reference forward: p in long double plus the shift and threshold.
struct AlphaResult {
  std::vector<ld> p;
  ld max = 0;
  ld tau = 0;
  std::size_t support = 0;
};

/// α-entmax of z (any α > 1) in long double. NaN or +inf anywhere gives a NaN row; an all -inf
/// row gives zeros. τ is found by bisection on [−1, −n^{1−α}] with the rule f(mid) ≥ 0 → lo = mid,
/// until the bracket holds two adjacent long doubles; p is renormalised.
template <class T>
AlphaResult entmax_alpha(const T* z, std::size_t n, ld alpha) {
  AlphaResult r;
  r.p.assign(n, 0.0L);
  if (n == 0) return r;
  ld m = -std::numeric_limits<ld>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    const ld v = static_cast<ld>(z[i]);
    if (std::isnan(v) || v == std::numeric_limits<ld>::infinity()) {
      std::fill(r.p.begin(), r.p.end(), std::numeric_limits<ld>::quiet_NaN());
      r.max = std::numeric_limits<ld>::quiet_NaN();
      r.tau = r.max;
      return r;
    }
    m = std::max(m, v);
  }
  r.max = m;
  if (m == -std::numeric_limits<ld>::infinity()) return r;
  const ld am1 = alpha - 1;
  const ld kappa = 1 / am1;
  std::vector<ld> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = am1 * (static_cast<ld>(z[i]) - m);
  auto f = [&](ld tau) {
    ld s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (d[i] > tau) s += std::pow(d[i] - tau, kappa);
    }
    return s - 1;
  };
  ld lo = -1;
  ld hi = -std::pow(static_cast<ld>(n), -am1);
  for (int it = 0; it < 400; ++it) {
    const ld mid = lo + (hi - lo) / 2;
    if (!(mid > lo && mid < hi)) break;
    if (f(mid) >= 0) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  ld sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    r.p[i] = d[i] > lo ? std::pow(d[i] - lo, kappa) : 0.0L;
    sum += r.p[i];
  }
  for (std::size_t i = 0; i < n; ++i) {
    r.p[i] /= sum;
    r.support += r.p[i] > 0;
  }
  r.tau = lo;
  return r;
}

/// Backward of α-entmax: u = p^{2−α} on the support, dz = u ⊙ dp − (⟨u, dp⟩ / Σu) u.
inline std::vector<ld> entmax_alpha_backward(const std::vector<ld>& p, const std::vector<ld>& dp, ld alpha) {
  const std::size_t n = p.size();
  std::vector<ld> u(n, 0.0L), dz(n, 0.0L);
  ld su = 0, sud = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] > 0) u[i] = std::pow(p[i], 2 - alpha);
    su += u[i];
    sud += u[i] * dp[i];
  }
  if (su == 0) return dz;
  for (std::size_t i = 0; i < n; ++i) dz[i] = u[i] * dp[i] - sud / su * u[i];
  return dz;
}

/// dL/dα (Correia et al. 2019): Σ dp_i [(p_i − ũ_i)/(α−1)² − (S_i − ũ_i H')/(α−1)], S_i = p_i log p_i,
/// H' = Σ S_i, ũ = u / Σu with u = p^{2−α} on the support.
inline ld entmax_alpha_grad(const std::vector<ld>& p, const std::vector<ld>& dp, ld alpha) {
  const std::size_t n = p.size();
  std::vector<ld> u(n, 0.0L);
  ld su = 0, hp = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] > 0) {
      u[i] = std::pow(p[i], 2 - alpha);
      hp += p[i] * std::log(p[i]);
    }
    su += u[i];
  }
  if (su == 0) return 0;
  const ld am1 = alpha - 1;
  ld g = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(p[i] > 0)) continue;
    const ld ut = u[i] / su;
    const ld s = p[i] * std::log(p[i]);
    g += dp[i] * ((p[i] - ut) / (am1 * am1) - (s - ut * hp) / am1);
  }
  return g;
}

}  // namespace ref_alpha
