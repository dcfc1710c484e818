// Double-precision accumulation of float batches (and plain accumulation of double batches):
// long row sums stay within a few ulps of the exact sum for float input.
#pragma once

#include <entmax/detail/simd.hpp>

#include <cstddef>

namespace entmax::detail {

namespace widen_impl {
// Adds both halves of a float batch, widened to double, to acc.
template <class A>
inline void add(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x, xsimd::generic) {
  constexpr std::size_t W = xsimd::batch<float, A>::size;
  constexpr std::size_t D = xsimd::batch<double, A>::size;
  alignas(64) float f[W];
  alignas(64) double d[D];
  x.store_aligned(f);
  acc.store_aligned(d);
  for (std::size_t i = 0; i < W; ++i) d[i % D] += static_cast<double>(f[i]);
  acc = xsimd::batch<double, A>::load_aligned(d);
}
#if XSIMD_WITH_SSE2
template <class A>
inline void add(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x, xsimd::sse2) {
  const __m128 v = x;
  acc = acc + xsimd::batch<double, A>(_mm_cvtps_pd(v)) +
        xsimd::batch<double, A>(_mm_cvtps_pd(_mm_movehl_ps(v, v)));
}
#endif
#if XSIMD_WITH_AVX
template <class A>
inline void add(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x, xsimd::avx) {
  const __m256 v = x;
  acc = acc + xsimd::batch<double, A>(_mm256_cvtps_pd(_mm256_castps256_ps128(v))) +
        xsimd::batch<double, A>(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}
#endif
#if XSIMD_WITH_AVX512F
template <class A>
inline void add(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x, xsimd::avx512f) {
  const __m512 v = x;
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  acc = acc + xsimd::batch<double, A>(_mm512_cvtps_pd(lo)) + xsimd::batch<double, A>(_mm512_cvtps_pd(hi));
}
#endif
}  // namespace widen_impl

/// acc += x, lane-wise in double (a float batch contributes both of its halves).
template <class A>
inline void add_to_double(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x) {
  widen_impl::add(acc, x, A{});
}
template <class A>
inline void add_to_double(xsimd::batch<double, A>& acc, const xsimd::batch<double, A>& x) {
  acc = acc + x;
}

}  // namespace entmax::detail
