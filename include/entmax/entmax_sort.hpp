// Exact α-entmax for any α > 1 by sorting: the reference-grade O(n log n) algorithm.
#pragma once

#include <entmax/detail/debug.hpp>
#include <entmax/detail/row.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

namespace entmax {

namespace detail {

/// Σ_{j<k} (d_j − t)^κ over the first k entries of a descending array (long double).
inline long double sorted_prefix_power_sum(const std::vector<long double>& d, std::size_t k, long double t,
                                           long double kappa) {
  long double s = 0;
  for (std::size_t j = 0; j < k; ++j) s += std::pow(d[j] - t, kappa);
  return s;
}

}  // namespace detail

/// α-entmax of one row by sorting, exact for any α > 1: p_i = [(α−1)(z_i − max) − τ]_+^{1/(α−1)}.
///
/// Sorts the shifted scores d = (α−1)(z − max) descending, finds the support size K as the
/// largest k with Σ_{j≤k} (d_j − d_k)^{1/(α−1)} < 1 (binary search: that sum grows with k), then
/// solves Σ_{j≤K} (d_j − τ)^{1/(α−1)} = 1 on the bracket [max(d_{K+1}, −1), d_K) by Newton's
/// method safeguarded by bisection to the last bit, and renormalises. O(n log n) time and O(n)
/// scratch; scalar. Meant for checking the fast kernels (entmax_bisect), not for speed.
///
/// @param z      n scores (may alias p).
/// @param p      n outputs.
/// @param n      row length; 0 is a no-op.
/// @param alpha  α > 1, finite; otherwise std::domain_error before any write.
/// @return       RowStats{max, τ in shifted coordinates, number of non-zero outputs}.
///
/// Numerics: everything in long double, rounded once to T. −inf scores get exact zeros; an
/// all −inf row gives zeros (support 0); NaN or +inf anywhere gives a NaN row.
template <class T>
RowStats<T> entmax_sort(const T* z, T* p, std::size_t n, T alpha) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::entmax_sort: T must be float or double");
  detail::check_alpha("entmax::entmax_sort", alpha);
  using ld = long double;
  detail::debug_check_scores("entmax::entmax_sort", z, n);
  const detail::RowScan<T> scan = detail::scan_row<T, xsimd::default_arch>(z, n);
  RowStats<T> special{};
  if (detail::special_row<T, xsimd::default_arch>(scan, p, n, special)) return special;
  const T m = scan.max;

  const ld am1 = static_cast<ld>(alpha) - 1;
  const ld kappa = 1 / am1;
  std::vector<ld> d(n);
  for (std::size_t i = 0; i < n; ++i) d[i] = am1 * (static_cast<ld>(z[i]) - static_cast<ld>(m));
  std::vector<ld> s(d);
  std::sort(s.begin(), s.end(), std::greater<ld>());

  // Largest k (1-based) with g(k) = Σ_{j≤k} (s_j − s_k)^κ < 1; g is non-decreasing, g(1) = 0.
  std::size_t lo_k = 1, hi_k = n;  // g(lo_k) < 1 holds; find the last such k.
  while (lo_k < hi_k) {
    const std::size_t mid = lo_k + (hi_k - lo_k + 1) / 2;
    const ld sk = s[mid - 1];
    const bool in =
        sk > -std::numeric_limits<ld>::infinity() && detail::sorted_prefix_power_sum(s, mid, sk, kappa) < 1;
    if (in) {
      lo_k = mid;
    } else {
      hi_k = mid - 1;
    }
  }
  const std::size_t K = lo_k;

  // Solve f(τ) = Σ_{j<K} (s_j − τ)^κ − 1 = 0 on [lo, hi); f(lo) ≥ 0 > f(hi).
  ld lo = -1;
  if (K < n && s[K] > lo) lo = s[K];
  ld hi = s[K - 1];
  ld tau = lo;
  for (int it = 0; it < 500; ++it) {
    ld f = -1, df = 0;
    for (std::size_t j = 0; j < K; ++j) {
      const ld x = s[j] - tau;
      const ld xk = std::pow(x, kappa);
      f += xk;
      df -= kappa * xk / x;
    }
    if (f == 0) break;
    if (f > 0) {
      lo = tau;
    } else {
      hi = tau;
    }
    ld next = tau - f / df;
    if (!(next > lo && next < hi)) next = lo + (hi - lo) / 2;
    // Converged: Newton stagnates, or the bracket holds two adjacent values.
    if (next == tau || !(next > lo && next < hi)) break;
    tau = next;
  }
  ld sum = 0;
  for (std::size_t j = 0; j < K; ++j) sum += std::pow(s[j] - tau, kappa);

  std::size_t support = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const T v = d[i] > tau ? static_cast<T>(std::pow(d[i] - tau, kappa) / sum) : T(0);
    p[i] = v;
    support += v != T(0);
  }
  const RowStats<T> stats{m, static_cast<T>(tau), support};
  detail::debug_check_row("entmax::entmax_sort", p, n, stats, static_cast<double>(alpha));
  return stats;
}

}  // namespace entmax
