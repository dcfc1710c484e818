// Loads T values as a batch of doubles and stores a batch of doubles as T: the double-precision
// working lanes of the general-α kernels read float rows through these.
#pragma once

#include <entmax/detail/simd.hpp>

#include <cstddef>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace entmax::detail {

/// batch<double, Arch>::size values of src (float or double) as doubles.
template <class Arch, class T>
inline xsimd::batch<double, Arch> load_widened(const T* src) {
  using B = xsimd::batch<double, Arch>;
  if constexpr (std::is_same_v<T, double>) {
    return B::load_unaligned(src);
  } else {
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      return B(_mm512_cvtps_pd(_mm256_loadu_ps(src)));
    } else
#endif
#if XSIMD_WITH_AVX
        if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
      return B(_mm256_cvtps_pd(_mm_loadu_ps(src)));
    } else
#endif
#if XSIMD_WITH_SSE2
        if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) {
      return B(_mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)))));
    } else
#endif
    {
      alignas(64) double tmp[B::size];
      for (std::size_t i = 0; i < B::size; ++i) tmp[i] = static_cast<double>(src[i]);
      return B::load_aligned(tmp);
    }
  }
}

/// Stores the lanes of x to dst as T (rounded to nearest for float).
template <class Arch, class T>
inline void store_narrowed(T* dst, const xsimd::batch<double, Arch>& x) {
  using B = xsimd::batch<double, Arch>;
  if constexpr (std::is_same_v<T, double>) {
    x.store_unaligned(dst);
  } else {
#if XSIMD_WITH_AVX512F
    if constexpr (std::is_base_of_v<xsimd::avx512f, Arch>) {
      _mm256_storeu_ps(dst, _mm512_cvtpd_ps(x));
    } else
#endif
#if XSIMD_WITH_AVX
        if constexpr (std::is_base_of_v<xsimd::avx, Arch>) {
      _mm_storeu_ps(dst, _mm256_cvtpd_ps(x));
    } else
#endif
#if XSIMD_WITH_SSE2
        if constexpr (std::is_base_of_v<xsimd::sse2, Arch>) {
      _mm_storel_pi(reinterpret_cast<__m64*>(dst), _mm_cvtpd_ps(x));
    } else
#endif
    {
      alignas(64) double tmp[B::size];
      x.store_aligned(tmp);
      for (std::size_t i = 0; i < B::size; ++i) dst[i] = static_cast<T>(tmp[i]);
    }
  }
}

}  // namespace entmax::detail
