// The one place that knows xsimd's version differences (8.1 `hadd` vs later `reduce_add`,
// no `reduce_max` in 8.1). Row kernels use only these names and xsimd's batch operators.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>
#include <type_traits>

namespace entmax::detail {

template <class T, class Arch>
using batch = xsimd::batch<T, Arch>;

template <class T, class Arch>
inline constexpr std::size_t batch_size = xsimd::batch<T, Arch>::size;

/// Sum of the lanes.
template <class T, class Arch>
inline T reduce_add(const xsimd::batch<T, Arch>& x) {
#if XSIMD_VERSION_MAJOR >= 10
  return xsimd::reduce_add(x);
#else
  return xsimd::hadd(x);
#endif
}

/// Largest lane (NaN lanes follow std::max order; callers detect NaN separately).
template <class T, class Arch>
inline T reduce_max(const xsimd::batch<T, Arch>& x) {
#if XSIMD_VERSION_MAJOR >= 10
  return xsimd::reduce_max(x);
#else
#if XSIMD_WITH_AVX512F
  if constexpr (std::is_base_of_v<xsimd::avx512f, Arch> && std::is_same_v<T, float>) {
    return _mm512_reduce_max_ps(x);
  } else if constexpr (std::is_base_of_v<xsimd::avx512f, Arch> && std::is_same_v<T, double>) {
    return _mm512_reduce_max_pd(x);
  }
#endif
  alignas(64) T lanes[xsimd::batch<T, Arch>::size];
  x.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < xsimd::batch<T, Arch>::size; ++i) m = std::max(m, lanes[i]);
  return m;
#endif
}

namespace fma_impl {
template <class T, class A>
inline xsimd::batch<T, A> fma(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y,
                              const xsimd::batch<T, A>& z, xsimd::generic) {
  return x * y + z;  // no fused instruction on this arch
}
#if defined(__FMA__) && XSIMD_WITH_SSE2
// Any 128-bit arch on an FMA3 machine (also keeps the compiler from contracting x * y + z
// on its own in code that relies on separate roundings).
template <class A>
inline xsimd::batch<float, A> fma(const xsimd::batch<float, A>& x, const xsimd::batch<float, A>& y,
                                  const xsimd::batch<float, A>& z, xsimd::sse2) {
  return _mm_fmadd_ps(x, y, z);
}
template <class A>
inline xsimd::batch<double, A> fma(const xsimd::batch<double, A>& x, const xsimd::batch<double, A>& y,
                                   const xsimd::batch<double, A>& z, xsimd::sse2) {
  return _mm_fmadd_pd(x, y, z);
}
#endif
#if defined(__FMA__) && XSIMD_WITH_AVX
template <class A>
inline xsimd::batch<float, A> fma(const xsimd::batch<float, A>& x, const xsimd::batch<float, A>& y,
                                  const xsimd::batch<float, A>& z, xsimd::avx) {
  return _mm256_fmadd_ps(x, y, z);
}
template <class A>
inline xsimd::batch<double, A> fma(const xsimd::batch<double, A>& x, const xsimd::batch<double, A>& y,
                                   const xsimd::batch<double, A>& z, xsimd::avx) {
  return _mm256_fmadd_pd(x, y, z);
}
#endif
#if XSIMD_WITH_AVX512F
// xsimd 8.1 has no AVX-512 fma kernel (its generic one is x * y + z).
template <class A>
inline xsimd::batch<float, A> fma(const xsimd::batch<float, A>& x, const xsimd::batch<float, A>& y,
                                  const xsimd::batch<float, A>& z, xsimd::avx512f) {
  return _mm512_fmadd_ps(x, y, z);
}
template <class A>
inline xsimd::batch<double, A> fma(const xsimd::batch<double, A>& x, const xsimd::batch<double, A>& y,
                                   const xsimd::batch<double, A>& z, xsimd::avx512f) {
  return _mm512_fmadd_pd(x, y, z);
}
#endif
}  // namespace fma_impl

/// Whether fma() below is a single-rounding fused multiply-add on Arch.
template <class Arch>
inline constexpr bool has_fused_fma =
#if XSIMD_WITH_AVX512F
    std::is_base_of_v<xsimd::avx512f, Arch> ||
#endif
#if defined(__FMA__) && XSIMD_WITH_AVX
    std::is_base_of_v<xsimd::avx, Arch> ||
#endif
#if defined(__FMA__) && XSIMD_WITH_SSE2
    std::is_base_of_v<xsimd::sse2, Arch> ||
#endif
    false;

/// x·y + z: fused (one rounding) where the arch has it (has_fused_fma), x·y + z otherwise.
/// (xsimd 8.1's own fma is not fused on AVX-512.)
template <class T, class A>
inline xsimd::batch<T, A> fma(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y,
                              const xsimd::batch<T, A>& z) {
  return fma_impl::fma(x, y, z, A{});
}

}  // namespace entmax::detail
