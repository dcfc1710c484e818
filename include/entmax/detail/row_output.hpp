// The output pass of the thresholded maps (sparsemax, entmax-1.5): p = map(z), optionally
// renormalised. The renormalisation is decided from the sum of the non-zero outputs taken in
// index order (sum_outputs), a sequence the forward can form from its candidates alone and
// from_stats from the outputs it writes, so both agree bitwise without a sum over the full row.
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/candidates.hpp>
#include <entmax/detail/scratch.hpp>
#include <entmax/detail/simd.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace entmax::detail {

/// Σ q[0, c) in double lanes (float) or double-double lanes (double); a deterministic function
/// of the sequence q.
template <class T, class Arch>
inline double sum_outputs(const T* q, std::size_t c) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  RowSum<T, Arch> sum;
  std::size_t j = 0;
  for (; j + W <= c; j += W) sum.add(B::load_unaligned(q + j));
  for (; j < c; ++j) sum.add(q[j]);
  return sum.value();
}

/// The factor that renormalises outputs summing to s: 1/s when s is more than 2ε (float) / 4ε
/// (double) away from 1, else 0 (keep the outputs as they are).
template <class T>
inline double renormalisation(double s) {
  constexpr double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  return std::fabs(s - 1.0) > (std::is_same_v<T, float> ? 2.0 : 4.0) * eps && s > 0.0 ? 1.0 / s : 0.0;
}

/// On candidates buf[0, k) (the map's argument x, in index order, a superset of the support):
/// compacts the non-zero outputs map.from_x(x) into buf, in order, and returns Σ of them
/// (sum_outputs). Equals the sum of the non-zero outputs of the row when every other score
/// maps to 0. buf needs a batch of slack.
template <class T, class Arch, class Map>
inline double candidate_output_sum(T* buf, std::size_t k, const Map& map) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B zero(T(0));
  std::size_t c = 0, j = 0;
  for (; j + W <= k; j += W) {
    const B q = map.from_x(B::load_unaligned(buf + j));
    c += compress_store(q, q > zero, buf + c);
  }
  for (; j < k; ++j) {
    const T q = map.from_x(buf[j]);
    if (q > T(0)) buf[c++] = q;
  }
  return sum_outputs<T, Arch>(buf, c);
}

/// p[0, n) = map(z), times c (in double, rounded once to T) when c != 0. p may alias z.
template <class T, class Arch, class Map>
inline void write_output(const T* z, T* p, std::size_t n, const Map& map, double c) {
  using B = xsimd::batch<T, Arch>;
  using BD = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  if (c == 0.0) {
    for (; i + W <= n; i += W) map(B::load_unaligned(z + i)).store_unaligned(p + i);
    for (; i < n; ++i) p[i] = map(z[i]);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    const BD cb(c);
    for (; i + W <= n; i += W) {
      BD l, h;
      split_to_double(map(B::load_unaligned(z + i)), l, h);
      join_to_float(l * cb, h * cb).store_unaligned(p + i);
    }
  } else {
    const B cb(c);
    for (; i + W <= n; i += W) (map(B::load_unaligned(z + i)) * cb).store_unaligned(p + i);
  }
  for (; i < n; ++i) p[i] = static_cast<T>(static_cast<double>(map(z[i])) * c);
}

/// The same p as write_output when map gives 0 on every whole batch not listed in hits[0, h)
/// (first indices of batches, increasing): zeros written as one block, then only the listed
/// batches and the scores after the last whole batch are mapped. p must not overlap z.
template <class T, class Arch, class Map>
inline void write_output_sparse(const T* z, T* p, std::size_t n, const Map& map, double c,
                                const std::size_t* hits, std::size_t h) {
  using B = xsimd::batch<T, Arch>;
  using BD = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::memset(p, 0, n * sizeof(T));  // all bits zero is +0, the map's zero
  const std::size_t tail = n - n % W;
  if (c == 0.0) {
    for (std::size_t j = 0; j < h; ++j) map(B::load_unaligned(z + hits[j])).store_unaligned(p + hits[j]);
    for (std::size_t i = tail; i < n; ++i) p[i] = map(z[i]);
    return;
  }
  if constexpr (std::is_same_v<T, float>) {
    const BD cb(c);
    for (std::size_t j = 0; j < h; ++j) {
      BD l, hi;
      split_to_double(map(B::load_unaligned(z + hits[j])), l, hi);
      join_to_float(l * cb, hi * cb).store_unaligned(p + hits[j]);
    }
  } else {
    const B cb(c);
    for (std::size_t j = 0; j < h; ++j)
      (map(B::load_unaligned(z + hits[j])) * cb).store_unaligned(p + hits[j]);
  }
  for (std::size_t i = tail; i < n; ++i) p[i] = static_cast<T>(static_cast<double>(map(z[i])) * c);
}

/// Whether [z, z + n) and [p, p + n) overlap.
template <class T>
inline bool overlaps(const T* z, const T* p, std::size_t n) {
  const auto a = reinterpret_cast<std::uintptr_t>(z), b = reinterpret_cast<std::uintptr_t>(p);
  return a < b + n * sizeof(T) && b < a + n * sizeof(T);
}

/// The output pass of the exact maps (sparsemax, entmax15): p = map(z), renormalised when the
/// rounding of τ may put Σp outside its bound (`at_risk`: Σp is taken over the k candidates `cand`,
/// which hold every non-zero output in index order). When under half of the row's batches hold a
/// candidate (hits[0, h)), zeros go in as one block and only those batches are mapped; rows that
/// alias or are shorter than 16 batches take the plain pass.
template <class T, class Arch, class Map>
inline void write_exact_output(const T* z, T* p, std::size_t n, const Map& map, bool at_risk, T* cand,
                               std::size_t k, const std::size_t* hits, std::size_t h) {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  const double c = at_risk ? renormalisation<T>(candidate_output_sum<T, Arch>(cand, k, map)) : 0.0;
  if (n >= 16 * W && 2 * h * W < n && !overlaps(z, p, n))
    write_output_sparse<T, Arch>(z, p, n, map, c, hits, h);
  else
    write_output<T, Arch>(z, p, n, map, c);
}

/// p[0, n) = map(z) and, in index order, its non-zero values into nz (n + batch elements).
/// Returns their number. p may alias z.
template <class T, class Arch, class Map>
inline std::size_t write_output_collect(const T* z, T* p, std::size_t n, const Map& map, T* nz) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B zero(T(0));
  std::size_t i = 0, c = 0;
  for (; i + W <= n; i += W) {
    const B q = map(B::load_unaligned(z + i));
    q.store_unaligned(p + i);
    const auto keep = q > zero;
    if (xsimd::any(keep)) c += compress_store(q, keep, nz + c);
  }
  for (; i < n; ++i) {
    const T q = map(z[i]);
    p[i] = q;
    if (q > T(0)) nz[c++] = q;
  }
  return c;
}

/// The output pass of from_stats (sparsemax, entmax15): p = map(z) and, when the sum is at risk,
/// its non-zero values collected (scratch) to decide the renormalisation exactly as the forward's
/// write_exact_output does.
template <class T, class Arch, class Map>
inline void write_output_from_stats(const T* z, T* p, std::size_t n, const Map& map, bool at_risk) {
  if (!at_risk) return write_output<T, Arch>(z, p, n, map, 0.0);
  T* nz = scratch<T>(n + xsimd::batch<T, Arch>::size);
  const std::size_t c = write_output_collect<T, Arch>(z, p, n, map, nz);
  const double r = renormalisation<T>(sum_outputs<T, Arch>(nz, c));
  if (r != 0.0) scale_row<T, Arch>(p, n, r);
}

}  // namespace entmax::detail
