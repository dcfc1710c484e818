// A vectorised exp for non-positive arguments (the shifted scores of softmax): Cody–Waite range
// reduction x = k·ln2 + r, |r| ≤ ln2/2, a polynomial for e^r and 2^k built in the exponent bits.
// Results below the smallest normal number are flushed to +0 (an absolute error below 1.2e-38
// in float, 2.3e-308 in double); −inf gives exactly 0 and NaN gives NaN.
#pragma once

#include <entmax/detail/simd.hpp>

#include <cstdint>

namespace entmax::detail {

/// e^x for x ≤ 0 (or −inf, NaN), float lanes; ≤ 2 ulp above the normal range.
template <class A>
inline xsimd::batch<float, A> exp_nonpositive(const xsimd::batch<float, A>& x) {
  using B = xsimd::batch<float, A>;
  using I = xsimd::batch<std::int32_t, A>;
  const B lo(-87.33654f);  // ln(FLT_MIN): below it the result is flushed to 0
  // max(lo, x) returns x when x is NaN (second operand of maxps), so NaN propagates.
  const B xc = xsimd::max(lo, x);
  const B shifter(12582912.0f);  // 1.5·2^23: adding it rounds to an integer in the low bits
  const B kd = detail::fma(xc, B(1.44269504088896341f), shifter);
  const B k = kd - shifter;
  B r = detail::fma(-k, B(0.693359375f), xc);  // ln2 split in a short high part and a low part
  r = detail::fma(-k, B(-2.12194440e-4f), r);
  B q = B(1.9875691500e-4f);
  q = detail::fma(q, r, B(1.3981999507e-3f));
  q = detail::fma(q, r, B(8.3334519073e-3f));
  q = detail::fma(q, r, B(4.1665795894e-2f));
  q = detail::fma(q, r, B(1.6666665459e-1f));
  q = detail::fma(q, r, B(5.0000001201e-1f));
  const B r2 = r * r;
  const B er = detail::fma(q, r2, r) + B(1.0f);
  // 2^k: the low bits of kd hold k; (k + 127) << 23 is the bit pattern of 2^k.
  const I bits = (xsimd::bitwise_cast<I>(kd) + I(127)) << 23;
  const B y = er * xsimd::bitwise_cast<B>(bits);
  return xsimd::select(x < lo, B(0.0f), y);
}

/// e^x − 1 for |x| < 0.35, double lanes: Taylor series to degree 13 (truncation below 5e-18
/// relative), x + x²·q(x) by Horner's rule in fused multiply-adds.
template <class A>
inline xsimd::batch<double, A> expm1_taylor(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  B q(1.0 / 6227020800.0);
  q = detail::fma(q, x, B(1.0 / 479001600.0));
  q = detail::fma(q, x, B(1.0 / 39916800.0));
  q = detail::fma(q, x, B(1.0 / 3628800.0));
  q = detail::fma(q, x, B(1.0 / 362880.0));
  q = detail::fma(q, x, B(1.0 / 40320.0));
  q = detail::fma(q, x, B(1.0 / 5040.0));
  q = detail::fma(q, x, B(1.0 / 720.0));
  q = detail::fma(q, x, B(1.0 / 120.0));
  q = detail::fma(q, x, B(1.0 / 24.0));
  q = detail::fma(q, x, B(1.0 / 6.0));
  q = detail::fma(q, x, B(0.5));
  return detail::fma(q, x * x, x);
}

/// e^x for x ≤ 0 (or −inf, NaN), double lanes; ≤ 2 ulp above the normal range.
template <class A>
inline xsimd::batch<double, A> exp_nonpositive(const xsimd::batch<double, A>& x) {
  using B = xsimd::batch<double, A>;
  using I = xsimd::batch<std::int64_t, A>;
  const B lo(-708.3964185322641);  // ln(DBL_MIN)
  const B xc = xsimd::max(lo, x);
  const B shifter(6755399441055744.0);  // 1.5·2^52
  const B kd = detail::fma(xc, B(1.4426950408889634), shifter);
  const B k = kd - shifter;
  B r = detail::fma(-k, B(6.93145751953125e-1), xc);
  r = detail::fma(-k, B(1.42860682030941723212e-6), r);
  const B er = expm1_taylor(r) + B(1.0);  // |r| ≤ ln2/2
  const I bits = (xsimd::bitwise_cast<I>(kd) + I(1023)) << 52;
  const B y = er * xsimd::bitwise_cast<B>(bits);
  return xsimd::select(x < lo, B(0.0), y);
}

}  // namespace entmax::detail
