// The one vector-Jacobian product of the entmax family (softmax is α = 1):
//   u_i = p_i^{2−α} on the support (0 elsewhere),  dz = u ⊙ dp − (⟨u, dp⟩ / Σu) · u.
// Kernels differ only in how u is computed (policy functors below).
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/simd.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

namespace entmax::detail {

/// u = p (softmax, α = 1).
struct IdentityWeight {
  template <class V>
  V operator()(const V& p) const {
    return p;
  }
};

/// u = 1 on the support, 0 elsewhere (sparsemax, α = 2).
struct IndicatorWeight {
  template <class T, class A>
  xsimd::batch<T, A> operator()(const xsimd::batch<T, A>& p) const {
    return xsimd::select(p != xsimd::batch<T, A>(T(0)), xsimd::batch<T, A>(T(1)), xsimd::batch<T, A>(T(0)));
  }
  template <class T>
  T operator()(T p) const {
    return p != T(0) ? T(1) : T(0);
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

/// dz = u ⊙ (dp − c), c = ⟨u, dp⟩ / Σu, with u = U(p) computed in T (U must map 0 to 0, be
/// finite and ≥ 0 on [0, 1]: every α ≤ 2). Sums in double. p, dp, dz contiguous; dz may alias
/// dp (not p). dz is exactly 0 where p = 0; a row with Σu = 0 (fully masked) gives dz = 0.
template <class T, class Arch, class U>
inline void entmax_vjp(const T* p, const T* dp, T* dz, std::size_t n, const U& u) {
  using B = xsimd::batch<T, Arch>;
  using BD = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  BD sud0(0.0), sud1(0.0), su0(0.0), su1(0.0);
  for (; i + 2 * W <= n; i += 2 * W) {
    const B u0 = u(B::load_unaligned(p + i));
    const B u1 = u(B::load_unaligned(p + i + W));
    add_to_double(sud0, u0 * B::load_unaligned(dp + i));
    add_to_double(sud1, u1 * B::load_unaligned(dp + i + W));
    add_to_double(su0, u0);
    add_to_double(su1, u1);
  }
  double sud = reduce_add(sud0 + sud1);
  double su = reduce_add(su0 + su1);
  for (; i < n; ++i) {
    const T ui = u(p[i]);
    sud += static_cast<double>(ui * dp[i]);
    su += static_cast<double>(ui);
  }
  if (!(su > 0.0) && su == su) {  // nothing in the support (e.g. fully masked): zero gradient
    for (std::size_t j = 0; j < n; ++j) dz[j] = T(0);
    return;
  }
  const T c = static_cast<T>(sud / su);
  const B cb(c), zero(T(0));
  i = 0;
  for (; i + W <= n; i += W) {
    const B pb = B::load_unaligned(p + i);
    const B g = u(pb) * (B::load_unaligned(dp + i) - cb);
    xsimd::select(pb != zero, g, zero).store_unaligned(dz + i);
  }
  for (; i < n; ++i) dz[i] = p[i] != T(0) ? u(p[i]) * (dp[i] - c) : T(0);
}

/// The same product for any α > 1, computed per support element in double:
/// u_i = p_i^{2−α}. The weights for c are rescaled by the smallest (α > 2) or largest (α < 2)
/// support probability, so Σu cannot overflow; dz_i = (dp_i − c) · p_i^{2−α} in double.
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
  double sud = 0.0, su = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    if (pi > 0.0) {
      const double w = e == 0.0 ? 1.0 : std::pow(pi / pref, e);
      sud += w * static_cast<double>(dp[i]);
      su += w;
    }
  }
  const double c = sud / su;
  for (std::size_t i = 0; i < n; ++i) {
    const double pi = static_cast<double>(p[i]);
    dz[i] = pi > 0.0 ? static_cast<T>((static_cast<double>(dp[i]) - c) * (e == 0.0 ? 1.0 : std::pow(pi, e)))
                     : (p[i] != T(0) ? std::numeric_limits<T>::quiet_NaN() : T(0));
  }
}

}  // namespace entmax::detail
