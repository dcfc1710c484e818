// Softmax on one row: p = exp(z − max − log Σ exp(z − max)), and its vector-Jacobian product.
#pragma once

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/debug.hpp>
#include <entmax/detail/entmax_backward.hpp>
#include <entmax/detail/exp.hpp>
#include <entmax/detail/row.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <type_traits>

namespace entmax {

namespace detail {

// Shifted scores below this give outputs that cannot round to 0, so the support is n.
template <class T>
inline constexpr T softmax_full_support_gap = sizeof(T) == 4 ? T(-70) : T(-650);

// p = exp(z − shift), returns Σ p: in double lanes for float rows, in double-double lanes for
// double rows (RowSum), so the sum hardly depends on the order or on the SIMD width.
template <class T, class Arch>
inline double softmax_exp_pass(const T* z, T* p, std::size_t n, T shift) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B s(shift);
  RowSum<T, Arch> acc0, acc1;
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    const B e0 = exp_nonpositive(B::load_unaligned(z + i) - s);
    const B e1 = exp_nonpositive(B::load_unaligned(z + i + W) - s);
    const B e2 = exp_nonpositive(B::load_unaligned(z + i + 2 * W) - s);
    const B e3 = exp_nonpositive(B::load_unaligned(z + i + 3 * W) - s);
    e0.store_unaligned(p + i);
    e1.store_unaligned(p + i + W);
    e2.store_unaligned(p + i + 2 * W);
    e3.store_unaligned(p + i + 3 * W);
    if constexpr (std::is_same_v<T, float>) {  // a float pair sums exactly enough in double lanes
      acc0.add(e0 + e1);
      acc1.add(e2 + e3);
    } else {
      acc0.add(e0);
      acc1.add(e1);
      acc0.add(e2);
      acc1.add(e3);
    }
  }
  for (; i + W <= n; i += W) {
    const B e = exp_nonpositive(B::load_unaligned(z + i) - s);
    e.store_unaligned(p + i);
    acc0.add(e);
  }
  if (i < n) {
    // Tail through a padded batch (−inf pads give 0).
    alignas(64) T buf[W];
    for (std::size_t j = 0; j < W; ++j) buf[j] = i + j < n ? z[i + j] : -std::numeric_limits<T>::infinity();
    const B e = exp_nonpositive(B::load_aligned(buf) - s);
    e.store_aligned(buf);
    for (std::size_t j = 0; i + j < n; ++j) {
      p[i + j] = buf[j];
      acc0.add(buf[j]);
    }
  }
  return acc0.value() + acc1.value();
}

template <class T, class Arch>
inline void scale_pass(T* p, std::size_t n, T factor) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B f(factor);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (B::load_unaligned(p + i) * f).store_unaligned(p + i);
  for (; i < n; ++i) p[i] *= factor;
}

template <class T>
inline std::size_t count_nonzero(const T* p, std::size_t n) {
  std::size_t c = 0;
  for (std::size_t i = 0; i < n; ++i) c += p[i] != T(0);
  return c;
}

}  // namespace detail

/// Softmax of one row: p_i = exp(z_i − m) / Σ_j exp(z_j − m), m = max z.
///
/// @param z  n contiguous scores; −inf marks a masked entry.
/// @param p  n outputs; may alias z (in-place).
/// @return   RowStats: max m, tau = log Σ exp(z − m) (so m + tau is the log-sum-exp), support =
///           number of non-zero outputs.
/// Numerics: vectorised exp (outputs below FLT_MIN/DBL_MIN flushed to 0), Σ accumulated in
/// double. −inf scores give exactly 0; all −inf gives zeros (support 0); NaN or +inf anywhere
/// gives a NaN row. n = 0 is a no-op.
template <class T, class Arch = xsimd::default_arch>
inline RowStats<T> softmax(const T* z, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::softmax: T must be float or double");
  detail::debug_check_scores("entmax::softmax", z, n);
  const detail::RowScan<T> scan = detail::scan_row<T, Arch>(z, n);
  RowStats<T> stats{};
  if (detail::special_row<T, Arch>(scan, p, n, stats)) return stats;
  const double sum = detail::softmax_exp_pass<T, Arch>(z, p, n, scan.max);
  detail::scale_pass<T, Arch>(p, n, static_cast<T>(1.0 / sum));
  stats.max = scan.max;
  stats.tau = static_cast<T>(std::log(sum));
  stats.support =
      scan.min - scan.max >= detail::softmax_full_support_gap<T> ? n : detail::count_nonzero(p, n);
  detail::debug_check_row("entmax::softmax", p, n, stats, 1.0);
  return stats;
}

/// Rebuilds softmax's output from its RowStats: p_i = exp(z_i − max − tau). Matches softmax()
/// to a few ulps (not bitwise). p may alias z. A stats.support of 0 gives zeros (NaN if
/// stats.max is NaN).
template <class T, class Arch = xsimd::default_arch>
inline void softmax_from_stats(const T* z, const RowStats<T>& stats, T* p, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::softmax_from_stats: T must be float or double");
  if (detail::special_from_stats<T, Arch>(stats, p, n)) return;
  // exp(z − m − tau) with the shift applied in two steps keeps z − m exact when representable.
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B m(stats.max), t(stats.tau);
  std::size_t i = 0;
  for (; i + W <= n; i += W)
    detail::exp_nonpositive((B::load_unaligned(z + i) - m) - t).store_unaligned(p + i);
  for (; i < n; ++i) {
    const T x = (z[i] - stats.max) - stats.tau;
    p[i] = x == -std::numeric_limits<T>::infinity() ? T(0) : std::exp(x);
  }
}

/// Vector-Jacobian product of softmax: dz = p ⊙ (dp − ⟨p, dp⟩ / Σp).
///
/// @param p  softmax output (n values); @param dp upstream gradient; @param dz result, may
/// alias dp. Sums in double. dz is exactly 0 where p = 0; an all-zero p gives dz = 0.
template <class T, class Arch = xsimd::default_arch>
inline void softmax_backward(const T* p, const T* dp, T* dz, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::softmax_backward: T must be float or double");
  detail::debug_check_backward("entmax::softmax_backward", p, dp, n);
  detail::entmax_vjp<T, Arch>(p, dp, dz, n, detail::IdentityWeight{});
}

}  // namespace entmax
