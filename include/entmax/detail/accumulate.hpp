// Double-precision accumulation of float batches (and plain accumulation of double batches):
// long row sums stay within a few ulps of the exact sum for float input.
#pragma once

#include <entmax/detail/simd.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

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

// The two halves of a float batch as double batches.
template <class A>
inline void split(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo, xsimd::batch<double, A>& hi,
                  xsimd::generic) {
  constexpr std::size_t D = xsimd::batch<double, A>::size;
  alignas(64) float f[2 * D];
  alignas(64) double d[2 * D];
  x.store_aligned(f);
  for (std::size_t i = 0; i < 2 * D; ++i) d[i] = static_cast<double>(f[i]);
  lo = xsimd::batch<double, A>::load_aligned(d);
  hi = xsimd::batch<double, A>::load_aligned(d + D);
}
#if XSIMD_WITH_SSE2
template <class A>
inline void split(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo, xsimd::batch<double, A>& hi,
                  xsimd::sse2) {
  const __m128 v = x;
  lo = _mm_cvtps_pd(v);
  hi = _mm_cvtps_pd(_mm_movehl_ps(v, v));
}
#endif
#if XSIMD_WITH_AVX
template <class A>
inline void split(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo, xsimd::batch<double, A>& hi,
                  xsimd::avx) {
  const __m256 v = x;
  lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
#endif
#if XSIMD_WITH_AVX512F
template <class A>
inline void split(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo, xsimd::batch<double, A>& hi,
                  xsimd::avx512f) {
  const __m512 v = x;
  lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}
#endif
}  // namespace widen_impl

/// The low and high halves of a float batch, widened to double batches.
template <class A>
inline void split_to_double(const xsimd::batch<float, A>& x, xsimd::batch<double, A>& lo,
                            xsimd::batch<double, A>& hi) {
  widen_impl::split(x, lo, hi, A{});
}

/// Error-free transformation a + b = s + e (Knuth's TwoSum), lane-wise.
template <class V>
inline void two_sum(const V& a, const V& b, V& s, V& e) {
  s = a + b;
  const V bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}

/// The rounding error of the product: x·y = fl(x·y) + e exactly (fused multiply-add where the
/// arch has it, Dekker's splitting otherwise).
template <class T, class A>
inline xsimd::batch<T, A> product_error(const xsimd::batch<T, A>& x, const xsimd::batch<T, A>& y,
                                        const xsimd::batch<T, A>& prod) {
  using B = xsimd::batch<T, A>;
  if constexpr (has_fused_fma<A>) {
    return detail::fma(x, y, -prod);
  } else {
    const B split(std::is_same_v<T, float> ? T(4097) : T(134217729));  // 2^ceil(p/2) + 1
    const B cx = split * x, cy = split * y;
    const B xh = cx - (cx - x), xl = x - xh;
    const B yh = cy - (cy - y), yl = y - yh;
    return ((xh * yh - prod) + xh * yl + xl * yh) + xl * yl;
  }
}

/// A compensated (double-double) running sum of doubles: hi + lo carries about 106 bits, so
/// the result does not depend on the summation order (beyond the last bit of hi + lo).
struct CompensatedSum {
  double hi = 0.0, lo = 0.0;
  void add(double x) {
    double s, e;
    two_sum(hi, x, s, e);
    hi = s;
    lo += e;
  }
  double value() const { return hi + lo; }
};

/// acc += x, lane-wise in double (a float batch contributes both of its halves).
template <class A>
inline void add_to_double(xsimd::batch<double, A>& acc, const xsimd::batch<float, A>& x) {
  widen_impl::add(acc, x, A{});
}
template <class A>
inline void add_to_double(xsimd::batch<double, A>& acc, const xsimd::batch<double, A>& x) {
  acc = acc + x;
}

/// Σ of T batches and scalars of a row pass: double lanes for float (exact for float values of
/// one row up to about 2^29 terms of similar size), double-double lanes for double.
template <class T, class Arch>
struct RowSum {
  using BD = xsimd::batch<double, Arch>;
  BD hi = BD(0.0), lo = BD(0.0);
  CompensatedSum tail;
  void add(const xsimd::batch<T, Arch>& x) {
    if constexpr (std::is_same_v<T, float>) {
      add_to_double(hi, x);
    } else {
      BD s, e;
      two_sum(hi, x, s, e);
      hi = s;
      lo = lo + e;
    }
  }
  void add(T x) { tail.add(static_cast<double>(x)); }
  double value() const {
    if constexpr (std::is_same_v<T, float>) {  // double lanes are ~2^29 times finer than float
      return reduce_add(hi) + tail.value();
    } else {
      alignas(64) double h[BD::size], l[BD::size];
      hi.store_aligned(h);
      lo.store_aligned(l);
      CompensatedSum s = tail;
      for (std::size_t j = 0; j < BD::size; ++j) {
        s.add(h[j]);
        s.add(l[j]);
      }
      return s.value();
    }
  }
};

/// The spacing of T at |t| (ulp) for a normal t, as a double (0 for zero and subnormals).
template <class T>
inline double ulp_at(T t) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U exponent_bits = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U b;
  std::memcpy(&b, &t, sizeof b);
  b &= exponent_bits;  // 2^⌊log2 |t|⌋
  T pow2;
  std::memcpy(&pow2, &b, sizeof b);
  return static_cast<double>(pow2) * static_cast<double>(std::numeric_limits<T>::epsilon());
}

}  // namespace entmax::detail
