// Row scaffolding shared by every row normalizer: the max scan (with NaN / +inf detection that
// does not depend on SIMD lane order), the special rows (empty, fully masked, invalid) and fills.
#pragma once

#include <entmax/detail/simd.hpp>
#include <entmax/row_stats.hpp>

#include <cstddef>
#include <limits>

namespace entmax::detail {

/// Result of one read-only pass over a row of scores.
template <class T>
struct RowScan {
  T max;         ///< largest score (−inf when every score is −inf or n = 0)
  T min;         ///< smallest score (may be −inf)
  bool invalid;  ///< some score is NaN or +inf: the row's output is NaN
};

/// One pass: max, min and whether a NaN or +inf is present. NaN detection uses explicit
/// unordered compares (xsimd::isnan; xsimd's `!=` is ordered on some archs), so the answer
/// never depends on the lane order of max/min.
template <class T, class Arch = xsimd::default_arch>
inline RowScan<T> scan_row(const T* z, std::size_t n) {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const T inf = std::numeric_limits<T>::infinity();
  std::size_t i = 0;
  T mx = -inf, mn = inf;
  bool nan = false;
  if (n >= 2 * W) {
    B mx0(-inf), mx1(-inf), mn0(inf), mn1(inf);
    auto bad = B(T(0)) > B(T(0));  // all false
    for (; i + 2 * W <= n; i += 2 * W) {
      const B a = B::load_unaligned(z + i);
      const B b = B::load_unaligned(z + i + W);
      mx0 = xsimd::max(mx0, a);
      mx1 = xsimd::max(mx1, b);
      mn0 = xsimd::min(mn0, a);
      mn1 = xsimd::min(mn1, b);
      bad = bad | xsimd::isnan(a) | xsimd::isnan(b);
    }
    nan = xsimd::any(bad);
    mx = reduce_max(xsimd::max(mx0, mx1));
    mn = -reduce_max(-xsimd::min(mn0, mn1));
  }
  for (; i < n; ++i) {
    const T v = z[i];
    nan = nan || (v != v);
    mx = v > mx ? v : mx;
    mn = v < mn ? v : mn;
  }
  return RowScan<T>{mx, mn, nan || mx == inf};
}

/// p[0, n) = value.
template <class T, class Arch = xsimd::default_arch>
inline void fill(T* p, std::size_t n, T value) {
  using B = batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B v(value);
  std::size_t i = 0;
  for (; i + W <= n; i += W) v.store_unaligned(p + i);
  for (; i < n; ++i) p[i] = value;
}

/// Handles the rows whose output does not depend on the normalizer: n = 0 (nothing written),
/// all −inf (zeros, support 0, max −inf) and NaN/+inf present (NaN, support 0). Returns true
/// when the row was one of those; `stats` is then final. Otherwise returns false and leaves
/// p untouched.
template <class T, class Arch = xsimd::default_arch>
inline bool special_row(const RowScan<T>& scan, T* p, std::size_t n, RowStats<T>& stats) {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  if (n == 0) {
    stats = RowStats<T>{-inf, T(0), 0};
    return true;
  }
  if (scan.invalid) {
    fill<T, Arch>(p, n, nan);
    stats = RowStats<T>{nan, nan, 0};
    return true;
  }
  if (scan.max == -inf) {
    fill<T, Arch>(p, n, T(0));
    stats = RowStats<T>{-inf, T(0), 0};
    return true;
  }
  return false;
}

/// from_stats for the special rows: `stats.support == 0` means zeros, or NaN if `stats.max`
/// is NaN. Returns true when the row was special (and p is written).
template <class T, class Arch = xsimd::default_arch>
inline bool special_from_stats(const RowStats<T>& stats, T* p, std::size_t n) {
  if (stats.support != 0) return false;
  fill<T, Arch>(p, n, stats.max != stats.max ? std::numeric_limits<T>::quiet_NaN() : T(0));
  return true;
}

}  // namespace entmax::detail
