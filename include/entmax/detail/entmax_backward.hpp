// The one vector-Jacobian product of the entmax family (softmax is α = 1):
//   u_i = p_i^{2−α} on the support (0 elsewhere),  dz = u ⊙ dp − (⟨u, dp⟩ / Σu) · u.
// Kernels differ only in how u is computed (policy functors below).
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/simd.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace entmax::detail {

/// u = p (softmax, α = 1).
struct IdentityWeight {
  template <class V>
  V operator()(const V& p) const {
    return p;
  }
};

/// u = 1 on the support, 0 elsewhere (sparsemax, α = 2). A NaN p gives u = NaN (1 + 0·p), so a
/// NaN row's gradient is NaN as for every other α.
struct IndicatorWeight {
  template <class T, class A>
  xsimd::batch<T, A> operator()(const xsimd::batch<T, A>& p) const {
    using B = xsimd::batch<T, A>;
    return xsimd::select(p == B(T(0)), B(T(0)), B(T(1)) + B(T(0)) * p);
  }
  template <class T>
  T operator()(T p) const {
    return p != T(0) ? T(1) + T(0) * p : T(0);
  }
};

/// u = √p (entmax-1.5).
struct SqrtWeight {
  template <class T, class A>
  xsimd::batch<T, A> operator()(const xsimd::batch<T, A>& p) const {
    return xsimd::sqrt(p);
  }
  template <class T>
  T operator()(T p) const {
    return std::sqrt(p);
  }
};

// float rows: products and sums in double (u·dp is exact in double); c split in two floats.
template <class Arch, class U>
inline void entmax_vjp_float(const float* p, const float* dp, float* dz, std::size_t n, const U& u) {
  using B = xsimd::batch<float, Arch>;
  using BD = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  BD sud0(0.0), sud1(0.0), su0(0.0), su1(0.0);
  for (; i + W <= n; i += W) {
    BD ul, uh, dl, dh;
    split_to_double(u(B::load_unaligned(p + i)), ul, uh);
    split_to_double(B::load_unaligned(dp + i), dl, dh);
    sud0 = detail::fma(ul, dl, sud0);  // the product of two floats is exact in double
    sud1 = detail::fma(uh, dh, sud1);
    su0 = su0 + ul;
    su1 = su1 + uh;
  }
  double sud = reduce_add(sud0 + sud1);
  double su = reduce_add(su0 + su1);
  for (std::size_t j = i; j < n; ++j) {
    const double uj = static_cast<double>(u(p[j]));
    sud += uj * static_cast<double>(dp[j]);
    su += uj;
  }
  if (!(su > 0.0) && su == su) {  // nothing in the support (e.g. fully masked): zero gradient
    for (std::size_t j = 0; j < n; ++j) dz[j] = 0.0f;
    return;
  }
  const double c = sud / su;
  // c = c_hi + c_lo in two floats: dp − c_hi is exact where dp is close to c, so the output
  // pass stays in float and Σ dz = 0 still holds to the rounding of each dz_i.
  const float c_hi = static_cast<float>(c), c_lo = static_cast<float>(c - static_cast<double>(c_hi));
  const B ch(c_hi), cl(c_lo), zero(0.0f);
  for (i = 0; i + W <= n; i += W) {
    const B pb = B::load_unaligned(p + i);
    const B g = u(pb) * ((B::load_unaligned(dp + i) - ch) - cl);
    xsimd::select(pb == zero, zero, g).store_unaligned(dz + i);  // == is ordered on every arch
  }
  for (; i < n; ++i) dz[i] = p[i] == 0.0f ? 0.0f : u(p[i]) * ((dp[i] - c_hi) - c_lo);
}

/// c = S_ud / S_u of two double-double sums as c_hi + c_lo: c_lo = (S_ud − c_hi·S_u) / S_u with
/// the residual formed from the parts, so dp − c_hi − c_lo is exact where dp is close to c.
inline void split_ratio(const CompensatedSum& sud, const CompensatedSum& su, double& c_hi, double& c_lo) {
  const double su_v = su.value();
  c_hi = sud.value() / su_v;
  c_lo = (std::fma(-c_hi, su.hi, sud.hi) + (sud.lo - c_hi * su.lo)) / su_v;
}

// double rows: ⟨u, dp⟩ and Σu in double-double (TwoSum, exact products by fma), c = c_hi + c_lo,
// dz = u ⊙ ((dp − c_hi) − c_lo).
template <class Arch, class U>
inline void entmax_vjp_double(const double* p, const double* dp, double* dz, std::size_t n, const U& u) {
  using B = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  B ud_hi(0.0), ud_lo(0.0), u_hi(0.0), u_lo(0.0);
  for (; i + W <= n; i += W) {
    const B ub = u(B::load_unaligned(p + i));
    const B db = B::load_unaligned(dp + i);
    const B prod = ub * db;
    const B perr = product_error(ub, db, prod);
    B s, e;
    two_sum(ud_hi, prod, s, e);
    ud_hi = s;
    ud_lo = ud_lo + (e + perr);
    two_sum(u_hi, ub, s, e);
    u_hi = s;
    u_lo = u_lo + e;
  }
  alignas(64) double a[W], b[W], c2[W], d[W];
  ud_hi.store_aligned(a);
  ud_lo.store_aligned(b);
  u_hi.store_aligned(c2);
  u_lo.store_aligned(d);
  CompensatedSum sud, su;
  double sud_lo = 0.0, su_lo = 0.0;
  for (std::size_t j = 0; j < W; ++j) {
    sud.add(a[j]);
    sud_lo += b[j];
    su.add(c2[j]);
    su_lo += d[j];
  }
  for (std::size_t j = i; j < n; ++j) {
    const double uj = u(p[j]);
    const double prod = uj * dp[j];
    sud.add(prod);
    sud_lo += std::fma(uj, dp[j], -prod);
    su.add(uj);
  }
  sud.lo += sud_lo;
  su.lo += su_lo;
  const double su_v = su.value();
  if (!(su_v > 0.0) && su_v == su_v) {
    for (std::size_t j = 0; j < n; ++j) dz[j] = 0.0;
    return;
  }
  double c_hi, c_lo;
  split_ratio(sud, su, c_hi, c_lo);
  const B ch(c_hi), cl(c_lo), zero(0.0);
  for (i = 0; i + W <= n; i += W) {
    const B pb = B::load_unaligned(p + i);
    const B g = u(pb) * ((B::load_unaligned(dp + i) - ch) - cl);
    xsimd::select(pb == zero, zero, g).store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = p[i] == 0.0 ? 0.0 : u(p[i]) * ((dp[i] - c_hi) - c_lo);
}

/// dz = u ⊙ (dp − c), c = ⟨u, dp⟩ / Σu, with u = U(p) computed in T (U maps batches and
/// scalars; it must map 0 to 0 and be finite and ≥ 0 on [0, 1]: every α ≤ 2). p, dp, dz
/// contiguous; dz may alias dp or p. Sums exact to about double-double (float: products and
/// sums in double), so Σ dz = 0 and dp = c·1 ⇒ dz = 0 hold to the rounding of each dz_i.
/// dz is exactly 0 where p = 0; a row with Σu = 0 (fully masked) gives dz = 0.
template <class T, class Arch, class U>
inline void entmax_vjp(const T* p, const T* dp, T* dz, std::size_t n, const U& u) {
  if constexpr (std::is_same_v<T, float>) {
    entmax_vjp_float<Arch>(p, dp, dz, n, u);
  } else {
    entmax_vjp_double<Arch>(p, dp, dz, n, u);
  }
}

/// The same product for any α > 1, computed per support element in double:
/// u_i = p_i^{2−α}. The weights for c are rescaled by the smallest (α > 2) or largest (α < 2)
/// support probability, so Σu cannot overflow; ⟨w, dp⟩ and Σw are double-double sums (exact
/// products by fma), c = c_hi + c_lo as above, and dz_i = ((dp_i − c_hi) − c_lo) · p_i^{2−α}.
template <class T>
inline void entmax_vjp_alpha(const T* p, const T* dp, T* dz, std::size_t n, double alpha) {
  const double e = 2.0 - alpha;
  double pref = e < 0 ? std::numeric_limits<double>::infinity() : 0.0;
  bool any = false;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    if (pi > 0.0) {
      any = true;
      pref = e < 0 ? (pi < pref ? pi : pref) : (pi > pref ? pi : pref);
    }
  }
  if (!any) {
    for (std::size_t i = 0; i < n; ++i) dz[i] = p[i] != T(0) ? std::numeric_limits<T>::quiet_NaN() : T(0);
    return;
  }
  CompensatedSum sud, su;
  double sud_lo = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    if (pi > 0.0) {
      const double w = e == 0.0 ? 1.0 : std::pow(pi / pref, e);
      const double d = static_cast<double>(dp[i]);
      const double prod = w * d;
      sud.add(prod);
      sud_lo += std::fma(w, d, -prod);
      su.add(w);
    }
  }
  sud.lo += sud_lo;
  double c_hi, c_lo;
  split_ratio(sud, su, c_hi, c_lo);
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    const double g = (static_cast<double>(dp[i]) - c_hi) - c_lo;
    dz[i] = pi > 0.0 ? static_cast<T>(g * (e == 0.0 ? 1.0 : std::pow(pi, e)))
                     : (p[i] != T(0) ? std::numeric_limits<T>::quiet_NaN() : T(0));
  }
}

}  // namespace entmax::detail
