// Listing the non-zero entries of a row (the index set of a sparse probability row) with SIMD
// compares and, on AVX-512, in-register compress of the index vector.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace entmax::detail {

/// Slack (in entries) the output of list_nonzero needs beyond the number of non-zeros: the
/// vector paths store whole index vectors.
inline constexpr std::size_t list_nonzero_slack = 16;

/// Writes the indices j < n with p[j] != 0 (NaN counts as non-zero) to out in ascending order and
/// returns their count; with vals, also the values p[j] in the same order. out (and vals) must
/// hold count + list_nonzero_slack entries.
template <class T>
std::size_t list_nonzero(const T* p, std::ptrdiff_t n, std::uint32_t* out, T* vals = nullptr) {
  static_assert(std::is_floating_point_v<T>);
  std::size_t c = 0;
  std::ptrdiff_t j = 0;
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const __m512 zero = _mm512_setzero_ps();
    const __m512i step = _mm512_set1_epi32(16), step4 = _mm512_set1_epi32(64);
    __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // 64 entries at a time: one well-predicted branch skips an all-zero stretch (most of a sparse
    // row); otherwise every 16 entries store a whole compressed index (and value) vector without
    // a data-dependent branch.
    auto step16 = [&](__m512 x, __mmask16 m) {
      // Compress into a register, then a plain store (the memory form is slow on some cores).
      _mm512_storeu_si512(out + c, _mm512_maskz_compress_epi32(m, iv));
      if (vals) _mm512_storeu_ps(vals + c, _mm512_maskz_compress_ps(m, x));
      c += static_cast<std::size_t>(__builtin_popcount(m));
      iv = _mm512_add_epi32(iv, step);
    };
    for (; j + 64 <= n; j += 64) {
      const __m512 x0 = _mm512_loadu_ps(p + j), x1 = _mm512_loadu_ps(p + j + 16);
      const __m512 x2 = _mm512_loadu_ps(p + j + 32), x3 = _mm512_loadu_ps(p + j + 48);
      const __mmask16 m0 = _mm512_cmp_ps_mask(x0, zero, _CMP_NEQ_UQ),
                      m1 = _mm512_cmp_ps_mask(x1, zero, _CMP_NEQ_UQ);
      const __mmask16 m2 = _mm512_cmp_ps_mask(x2, zero, _CMP_NEQ_UQ),
                      m3 = _mm512_cmp_ps_mask(x3, zero, _CMP_NEQ_UQ);
      if ((m0 | m1 | m2 | m3) == 0) {
        iv = _mm512_add_epi32(iv, step4);
        continue;
      }
      step16(x0, m0);
      step16(x1, m1);
      step16(x2, m2);
      step16(x3, m3);
    }
    for (; j + 16 <= n; j += 16) {
      const __m512 x = _mm512_loadu_ps(p + j);
      step16(x, _mm512_cmp_ps_mask(x, zero, _CMP_NEQ_UQ));
    }
  } else {
    const __m512d zero = _mm512_setzero_pd();
    for (; j + 8 <= n; j += 8) {
      unsigned m = _mm512_cmp_pd_mask(_mm512_loadu_pd(p + j), zero, _CMP_NEQ_UQ);
      while (m) {
        const std::ptrdiff_t t = j + __builtin_ctz(m);
        if (vals) vals[c] = p[t];
        out[c++] = static_cast<std::uint32_t>(t);
        m &= m - 1;
      }
    }
  }
#elif defined(__AVX2__)
  if constexpr (std::is_same_v<T, float>) {
    const __m256 zero = _mm256_setzero_ps();
    for (; j + 8 <= n; j += 8) {
      auto m =
          static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(p + j), zero, _CMP_NEQ_UQ)));
      while (m) {
        const std::ptrdiff_t t = j + __builtin_ctz(m);
        if (vals) vals[c] = p[t];
        out[c++] = static_cast<std::uint32_t>(t);
        m &= m - 1;
      }
    }
  } else {
    const __m256d zero = _mm256_setzero_pd();
    for (; j + 4 <= n; j += 4) {
      auto m =
          static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(_mm256_loadu_pd(p + j), zero, _CMP_NEQ_UQ)));
      while (m) {
        const std::ptrdiff_t t = j + __builtin_ctz(m);
        if (vals) vals[c] = p[t];
        out[c++] = static_cast<std::uint32_t>(t);
        m &= m - 1;
      }
    }
  }
#else
  // Skip stretches of 8 zeros with one branch.
  for (; j + 8 <= n; j += 8) {
    bool any = false;
    for (std::ptrdiff_t t = j; t < j + 8; ++t) any |= p[t] != T(0);
    if (!any) continue;
    for (std::ptrdiff_t t = j; t < j + 8; ++t) {
      out[c] = static_cast<std::uint32_t>(t);
      if (vals) vals[c] = p[t];
      c += p[t] != T(0);
    }
  }
#endif
  for (; j < n; ++j) {
    out[c] = static_cast<std::uint32_t>(j);
    if (vals) vals[c] = p[j];
    c += p[j] != T(0);
  }
  return c;
}

}  // namespace entmax::detail
