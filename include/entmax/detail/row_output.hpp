// The output pass of the exact maps (sparsemax, entmax-1.5): p = map(z), the map subtracting
// the threshold in two parts, τ = tau + tau_lo. tau is τ rounded to T; on deep supports every
// non-zero output would carry its rounding, so the forward finds tau_lo from sums over the
// support (support_sums) and keeps it in RowStats, from which from_stats rebuilds p bitwise.
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/candidates.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/row_stats.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace entmax::detail {

/// Over the d = x − tau > 0 of x[0, k): their number and Σd, Σd² (double lanes for float rows,
/// double-double lanes for double rows).
struct SupportSums {
  double k, sd, sd2;
};
template <class T, class Arch>
inline SupportSums support_sums(const T* x, std::size_t k, T tau) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B tb(tau), zero(T(0));
  RowSum<T, Arch> sd, sd2;
  std::size_t c = 0, j = 0;
  for (; j + W <= k; j += W) {
    const B d = xsimd::max(B::load_unaligned(x + j) - tb, zero);
    c += count_true(d > zero);
    sd.add(d);
    sd2.add(d * d);
  }
  for (; j < k; ++j) {
    const T d = x[j] - tau;
    if (d > T(0)) {
      ++c;
      sd.add(d);
      sd2.add(d * d);
    }
  }
  return {static_cast<double>(c), sd.value(), sd2.value()};
}

/// tau_lo = lo rounded to T, raised where needed so that x_theta (the largest x the candidate
/// collection left out) still maps to 0: the sparse output pass never maps the batches holding
/// only such scores, and the plain pass must agree with it.
template <class T>
inline T bounded_tau_lo(double lo, T tau, T x_theta) {
  return std::max(static_cast<T>(lo), x_theta - tau);
}

/// p[0, n) = map(z). p may alias z.
template <class T, class Arch, class Map>
inline void write_output(const T* z, T* p, std::size_t n, const Map& map) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) map(B::load_unaligned(z + i)).store_unaligned(p + i);
  for (; i < n; ++i) p[i] = map(z[i]);
}

/// The same p as write_output when map gives 0 on every whole batch not listed in hits[0, h)
/// (first indices of batches, increasing): zeros written as one block, then only the listed
/// batches and the scores after the last whole batch are mapped. p must not overlap z.
template <class T, class Arch, class Map>
inline void write_output_sparse(const T* z, T* p, std::size_t n, const Map& map, const std::size_t* hits,
                                std::size_t h) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::memset(p, 0, n * sizeof(T));  // all bits zero is +0, the map's zero
  for (std::size_t j = 0; j < h; ++j) map(B::load_unaligned(z + hits[j])).store_unaligned(p + hits[j]);
  for (std::size_t i = n - n % W; i < n; ++i) p[i] = map(z[i]);
}

/// Whether [z, z + n) and [p, p + n) overlap.
template <class T>
inline bool overlaps(const T* z, const T* p, std::size_t n) {
  const auto a = reinterpret_cast<std::uintptr_t>(z), b = reinterpret_cast<std::uintptr_t>(p);
  return a < b + n * sizeof(T) && b < a + n * sizeof(T);
}

/// Number of p[i] > 0 over the batches starting at first[0, h) and over the scores after the
/// last whole batch.
template <class T, class Arch>
inline std::size_t count_positive(const T* p, std::size_t n, const std::size_t* first, std::size_t h) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t c = 0;
  if (n >= W)  // (a shorter row lists no batch; the test keeps compilers from seeing a load past it)
    for (std::size_t j = 0; j < h; ++j) c += count_true(B::load_unaligned(p + first[j]) > B(T(0)));
  for (std::size_t i = n - n % W; i < n; ++i) c += p[i] > T(0);
  return c;
}

/// The output pass of the exact maps (sparsemax, entmax15): p = map(z). When under half of the
/// row's batches hold a candidate (hits[0, h)), zeros go in as one block and only those batches
/// are mapped; rows that alias or are shorter than 16 batches take the plain pass. With
/// stats.tau_lo ≠ 0 a score at tau itself may be in the support, so stats.support becomes the
/// count of non-zero outputs (on the listed batches: the others map to 0).
template <class T, class Arch, class Map>
inline void write_exact_output(const T* z, T* p, std::size_t n, const Map& map, const std::size_t* hits,
                               std::size_t h, RowStats<T>& stats) {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  const bool sparse = n >= 16 * W && 2 * h * W < n && !overlaps(z, p, n);
  if (sparse)
    write_output_sparse<T, Arch>(z, p, n, map, hits, h);
  else
    write_output<T, Arch>(z, p, n, map);
  if (stats.tau_lo != T(0)) stats.support = count_positive<T, Arch>(p, n, hits, h);
}

}  // namespace entmax::detail
