// Candidate collection for the threshold searches: the elements of a shifted, scaled row that
// lie above a lower bound of τ (the only ones that can be in the support), compacted into a
// buffer with a vector compress where the arch has one.
#pragma once

#include <entmax/detail/simd.hpp>

#include <cstddef>

namespace entmax::detail {

namespace compress_impl {
template <class T, class A>
inline std::size_t store(const xsimd::batch<T, A>& x, const xsimd::batch_bool<T, A>& keep, T* out,
                         xsimd::generic) {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  alignas(64) bool k[W];
  x.store_aligned(v);
  keep.store_aligned(k);
  std::size_t c = 0;
  for (std::size_t j = 0; j < W; ++j) {
    out[c] = v[j];
    c += k[j] ? 1u : 0u;
  }
  return c;
}
#if XSIMD_WITH_AVX512F
template <class A>
inline std::size_t store(const xsimd::batch<float, A>& x, const xsimd::batch_bool<float, A>& keep, float* out,
                         xsimd::avx512f) {
  const __mmask16 m = keep.data;
  _mm512_storeu_ps(out, _mm512_maskz_compress_ps(m, x));
  return static_cast<std::size_t>(__builtin_popcount(m));
}
template <class A>
inline std::size_t store(const xsimd::batch<double, A>& x, const xsimd::batch_bool<double, A>& keep,
                         double* out, xsimd::avx512f) {
  const __mmask8 m = keep.data;
  _mm512_storeu_pd(out, _mm512_maskz_compress_pd(m, x));
  return static_cast<std::size_t>(__builtin_popcount(m));
}
#endif
}  // namespace compress_impl

/// Writes the kept lanes of x, in order, to out[0, count) and returns count. May write up to
/// a full batch past out + count (the buffer needs that slack).
template <class T, class A>
inline std::size_t compress_store(const xsimd::batch<T, A>& x, const xsimd::batch_bool<T, A>& keep, T* out) {
  return compress_impl::store(x, keep, out, A{});
}

/// Shifted, scaled scores x_i = scale·(z_i − m) that exceed `bound`, compacted into out (which
/// needs n + batch size elements). Returns their number. The values are computed with exactly
/// the operations the output passes use, so a τ found on them certifies the row.
template <class T, class Arch>
inline std::size_t collect_candidates(const T* z, std::size_t n, T m, T scale, T bound, T* out) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B mb(m), sb(scale), lb(bound);
  std::size_t i = 0, c = 0;
  for (; i + W <= n; i += W) {
    const B x = (B::load_unaligned(z + i) - mb) * sb;
    const auto keep = x > lb;
    if (xsimd::any(keep)) c += compress_store(x, keep, out + c);
  }
  for (; i < n; ++i) {
    const T x = (z[i] - m) * scale;
    if (x > bound) out[c++] = x;
  }
  return c;
}

}  // namespace entmax::detail
