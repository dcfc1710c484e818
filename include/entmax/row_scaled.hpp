// Row-scaled normalizers: a base normalizer applied to s·z, where the positive scale s depends on
// the row (and on how many keys the row sees). ASEntmax and scalable softmax are of this kind.
#pragma once

#include <entmax/config.hpp>
#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/row.hpp>
#include <entmax/detail/simd.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <utility>

namespace entmax {

// The row-scaled normalizer interface. A policy R is row-scaled for scalar type T when, for
// const R r, std::size_t row, npos and T ds:
//
//   R::is_row_scaled                 constexpr bool, true
//   r.base()                         -> const R::base_type&, a Normalizer (see normalizer.hpp):
//                                       the map applied to the scaled row
//   r.scale(row, npos)               -> T, the scale s > 0 of that row: p = base(s · z)
//   r.scale_backward(row, npos, ds)  records ds = dL/ds of that row into the policy's gradient
//                                       sinks (if it has any); returns nothing
//
// `row` is the flat index of the score row. For attention over [batch, heads, Nq, ·] tensors it
// is (b · heads + h) · Nq + i, i.e. the row-major order of the [batch, heads, Nq] score rows; for
// a matrix of rows it is the row number. `npos` is the number of visible (unmasked) keys of the
// row plus one: a causal query i of a square attention has npos = i + 2, so log(npos) > 0.
//
// Contract every policy here keeps, so consumers may rely on it:
// * scale and scale_backward are const, and scale_backward for distinct rows writes distinct
//   memory: rows may be processed concurrently. Calling it again for a row overwrites.
// * A row with no visible key (npos < 2) is fully masked: its output is 0 whatever s is.
//   scale() then returns 1 and scale_backward() records zero gradients; neither throws.
// * Parameters are validated when the policy is built (O(1) checks) or, for per-row arrays,
//   are the caller's responsibility (a non-finite or non-positive scale gives a NaN row).
//
// The chain rule the consumer implements (row_scaled_forward/backward below do exactly this):
//   forward:  p = base(s · z), evaluated as base(s · (z − max z)) (same map: the base is shift
//             invariant) so that s · z cannot overflow for huge finite scores;
//   backward: g = J_base(p)ᵀ dp,  dz = s · g,  ds = ⟨g, z⟩ = ⟨g, z − max z⟩ (Σ g = 0) over the
//             entries with z ≠ −inf, then r.scale_backward(row, npos, ds).
// Masked entries (z = −inf) have g = 0; they are skipped in the dot because 0 · (−inf) is NaN.

namespace detail {
template <class R, class = void>
struct row_scaled_flag : std::false_type {};
template <class R>
struct row_scaled_flag<R, std::void_t<decltype(bool{R::is_row_scaled})>>
    : std::bool_constant<R::is_row_scaled> {};
}  // namespace detail

/// True when N declares `static constexpr bool is_row_scaled = true` (see the interface above).
template <class N>
struct is_row_scaled : detail::row_scaled_flag<std::decay_t<N>> {};
template <class N>
inline constexpr bool is_row_scaled_v = is_row_scaled<N>::value;

namespace detail {

// Kept out of line: inlined into callers whose n is a container size, GCC 12 reports a
// -Waggressive-loop-optimizations false positive (an impossible 2^61-iteration path) in the
// row scan.
#if defined(__GNUC__)
#define ENTMAX_ROW_SCALED_NOINLINE __attribute__((noinline))
#else
#define ENTMAX_ROW_SCALED_NOINLINE
#endif

/// x[0, n) = 0. GCC 12 sees callers' npos = i + 2 wrap around on an impossible path and reports
/// a huge memset here (a -Wstringop-overflow false positive); the loop writes exactly n elements.
template <class T>
inline void zero_fill(T* x, std::size_t n) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  for (std::size_t i = 0; i < n; ++i) x[i] = T(0);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

/// Σ g_i d_i with d_i = z_i − shift over the entries with d_i ≠ −inf, in double; if `out` is
/// non-null, also out_i = scale · g_i in the same pass (out may be g itself). float lanes are
/// widened to double before the difference and the product (no overflow; the product is exact).
/// shift must be finite (0: the plain masked dot). d_i = −inf means z_i = −inf (masked) or, for
/// double, z_i more than DBL_MAX below the shift (then p_i = 0 and g_i = 0 for every base map);
/// both are skipped. NaN or +inf in z propagates.
template <class Arch, class T>
double masked_dot_scale(const T* g, const T* z, std::size_t n, T* out, T scale, T shift) {
  using bd = xsimd::batch<double, Arch>;
  using bt = xsimd::batch<T, Arch>;
  constexpr std::size_t W = bt::size;
  const bd ninf(-std::numeric_limits<double>::infinity());
  const bd zero(0.0);
  const bt s(scale);
  const bd shd(static_cast<double>(shift));
  const bt sht(shift);
  // One vector of W elements into two double accumulators. The mask is d == −inf (ordered
  // compare, false for NaN) so that NaN lanes are kept.
  auto step = [&](std::size_t k, bd& a, bd& b) {
    const bt gv = bt::load_unaligned(g + k);
    const bt zv = bt::load_unaligned(z + k);
    if constexpr (std::is_same_v<T, float>) {
      bd glo, ghi, zlo, zhi;
      split_to_double(gv, glo, ghi);
      split_to_double(zv, zlo, zhi);
      zlo -= shd;
      zhi -= shd;
      a += xsimd::select(zlo == ninf, zero, glo * zlo);
      b += xsimd::select(zhi == ninf, zero, ghi * zhi);
      (void)sht;
    } else {
      const bt dv = zv - sht;
      a += xsimd::select(dv == ninf, zero, gv * dv);
      (void)b;
      (void)shd;
    }
    if (out) (gv * s).store_unaligned(out + k);
  };
  bd acc0(0.0), acc1(0.0), acc2(0.0), acc3(0.0);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {  // two independent vectors per trip: four add chains
    step(i, acc0, acc1);
    step(i + W, acc2, acc3);
  }
  if (i + W <= n) {
    step(i, acc0, acc1);
    i += W;
  }
  double tail = 0;
  for (; i < n; ++i) {
    const double d = std::is_same_v<T, float> ? static_cast<double>(z[i]) - static_cast<double>(shift)
                                              : static_cast<double>(z[i] - shift);
    if (d != -std::numeric_limits<double>::infinity()) tail += static_cast<double>(g[i]) * d;
    if (out) out[i] = scale * g[i];
  }
  return reduce_add((acc0 + acc1) + (acc2 + acc3)) + tail;
}

/// The shift used by the scaled-row helpers: max z when the row has a finite max and no NaN or
/// +inf, else 0 (an all −inf row, or a row whose output is NaN anyway, is left unshifted so
/// that −inf, NaN and +inf keep their meaning).
template <class T, class Arch = xsimd::default_arch>
T scaled_row_shift(const T* z, std::size_t n) {
  const RowScan<T> sc = scan_row<T, Arch>(z, n);
  return (sc.invalid || sc.max == -std::numeric_limits<T>::infinity()) ? T(0) : sc.max;
}

/// p_i = s · (z_i − m), m = scaled_row_shift(z, n); the input of base(s · z) without the overflow
/// of s · z for huge finite scores (base is shift invariant). Entries more than the largest
/// finite T below m become −inf: their exact output is 0 for softmax and every entmax, whose
/// support lies within 1/(α−1) of the max of the scaled row (softmax: exp(−huge) = 0). An all
/// −inf row stays −inf (s·z, so a NaN or non-positive s still gives a NaN row); NaN/+inf rows
/// stay NaN/+inf (s·z), hence NaN rows.
/// z and p may alias. Returns the shift m.
template <class T, class Arch = xsimd::default_arch>
ENTMAX_ROW_SCALED_NOINLINE T scale_shifted_row(const T* z, T* p, std::size_t n, T s) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const T m = scaled_row_shift<T, Arch>(z, n);
  const B mv(m), sv(s);
  std::size_t i = 0;
  for (; i + W <= n; i += W) (sv * (B::load_unaligned(z + i) - mv)).store_unaligned(p + i);
  for (; i < n; ++i) p[i] = s * (z[i] - m);
  return m;
}

/// ds = ⟨g, z⟩ over the unmasked entries, computed as ⟨g, z − m⟩ with m = scaled_row_shift(z):
/// equal in exact arithmetic because Σ g = 0 (the base map is shift invariant), but the shifted
/// form neither overflows (double z near ±DBL_MAX) nor loses the rounding error m · Σ g of the
/// computed g. Also writes g ← s · g in the same pass. g must not alias z.
template <class T, class Arch = xsimd::default_arch>
T shifted_dot_then_scale(T* g, const T* z, std::size_t n, T s) {
  const T m = scaled_row_shift<T, Arch>(z, n);
  return static_cast<T>(masked_dot_scale<Arch>(static_cast<const T*>(g), z, n, g, s, m));
}

}  // namespace detail

/// ⟨g, z⟩ over the entries where z is not −inf, accumulated in double (float products are
/// formed exactly in double). Entries with z = −inf are masked and contribute nothing (their g
/// is 0 and 0·(−inf) is NaN). NaN or +inf in z propagates. Used for ds = dL/ds of a scaled row.
template <class T, class Arch = xsimd::default_arch>
T masked_dot(const T* g, const T* z, std::size_t n) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::masked_dot: T must be float or double");
  return static_cast<T>(detail::masked_dot_scale<Arch>(g, z, n, static_cast<T*>(nullptr), T(1), T(0)));
}

/// Returns ⟨g, z⟩ over the unmasked entries (as masked_dot) and scales g ← s · g in the same
/// pass. g must not alias z.
template <class T, class Arch = xsimd::default_arch>
T masked_dot_then_scale(T* g, const T* z, std::size_t n, T s) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::masked_dot_then_scale: T must be float or double");
  return static_cast<T>(detail::masked_dot_scale<Arch>(static_cast<const T*>(g), z, n, g, s, T(0)));
}

/// Forward of a row-scaled normalizer on one row: p = r.base()(s · z) with s = r.scale(row, npos),
/// evaluated as r.base()(s · (z − max z)) (the same map; no overflow of s · z for huge finite z).
/// Returns the base map's RowStats of that SHIFTED scaled row: max is 0 for a valid row (−inf for
/// an all −inf row, NaN-row stats for NaN/+inf), tau is the threshold in s · (z − max z) units
/// (tau of s · z minus s · max z), support is unchanged. Pass the shifted row to from_stats.
/// z and p may alias (the shifted scaled row is written into p, then normalized in place).
/// A row with npos < 2 is treated as fully masked: p = 0, stats {−inf, 0, 0}.
template <class R, class T>
RowStats<T> row_scaled_forward(const R& r, std::size_t row, std::size_t npos, const T* z, T* p,
                               std::size_t n) {
  static_assert(is_row_scaled_v<R>, "entmax::row_scaled_forward: R must be a row-scaled normalizer");
  static_assert(detail::is_supported_scalar_v<T>, "entmax::row_scaled_forward: T must be float or double");
  if (n == 0) return {-std::numeric_limits<T>::infinity(), T(0), 0};
  if (npos < 2) {
    detail::zero_fill(p, n);
    return {-std::numeric_limits<T>::infinity(), T(0), 0};
  }
  const T s = r.scale(row, npos);
  detail::scale_shifted_row(z, p, n, s);
  return r.base().forward(static_cast<const T*>(p), p, n);
}

/// Rebuilds row_scaled_forward's p from the RowStats it returned (same r, row, npos and z):
/// p = r.base().from_stats(s · (z − max z), stats), bitwise equal for the sparse maps. z and p
/// may alias. A row with npos < 2 gives p = 0.
template <class R, class T>
void row_scaled_from_stats(const R& r, std::size_t row, std::size_t npos, const T* z,
                           const RowStats<T>& stats, T* p, std::size_t n) {
  static_assert(is_row_scaled_v<R>, "entmax::row_scaled_from_stats: R must be a row-scaled normalizer");
  static_assert(detail::is_supported_scalar_v<T>, "entmax::row_scaled_from_stats: T must be float or double");
  if (npos < 2 || n == 0) return detail::zero_fill(p, n);
  detail::scale_shifted_row(z, p, n, r.scale(row, npos));
  r.base().from_stats(static_cast<const T*>(p), stats, p, n);
}

/// Backward of a row-scaled normalizer on one row. Given the unscaled scores z, p = forward's
/// output and dp = dL/dp, writes dz = dL/dz = s · J_base(p)ᵀ dp, calls r.scale_backward(row,
/// npos, ds) and returns ds = dL/ds = ⟨J_base(p)ᵀ dp, z⟩ (masked entries skipped, double sums),
/// computed as ⟨J_base(p)ᵀ dp, z − max z⟩ (see detail::shifted_dot_then_scale: equal since the
/// gradient sums to 0, and free of the overflow and cancellation of huge finite z).
/// dz may alias dp but not z or p. A row with npos < 2 gives dz = 0 and ds = 0.
template <class R, class T>
T row_scaled_backward(const R& r, std::size_t row, std::size_t npos, const T* z, const T* p, const T* dp,
                      T* dz, std::size_t n) {
  static_assert(is_row_scaled_v<R>, "entmax::row_scaled_backward: R must be a row-scaled normalizer");
  static_assert(detail::is_supported_scalar_v<T>, "entmax::row_scaled_backward: T must be float or double");
  if (npos < 2) {
    detail::zero_fill(dz, n);
    r.scale_backward(row, npos, T(0));
    return T(0);
  }
  const T s = r.scale(row, npos);
  T ds = T(0);
  if (n != 0) {
    r.base().backward(p, dp, dz, n);
    ds = detail::shifted_dot_then_scale(dz, z, n, s);
  }
  r.scale_backward(row, npos, ds);
  return ds;
}

/// Sums per-row values (e.g. the per-row gradient sinks of a per-head parameter) into per-head
/// totals: out[h] = Σ over rows r with (r / rows_per_head) % heads == h of per_row[r], in double.
/// `rows` need not be a multiple of heads · rows_per_head. Throws std::invalid_argument when
/// heads or rows_per_head is 0 while rows > 0. out must not alias per_row.
template <class T>
void sum_rows_per_head(const T* per_row, std::size_t rows, std::size_t heads, std::size_t rows_per_head,
                       T* out) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::sum_rows_per_head: T must be float or double");
  if (rows != 0 && (heads == 0 || rows_per_head == 0)) {
    detail::raise(ErrorKind::invalid_argument,
                  detail::message("entmax::sum_rows_per_head: heads and rows_per_head must be > 0 (got ",
                                  heads, " and ", rows_per_head, ")"));
  }
  for (std::size_t h = 0; h < heads; ++h) {
    double acc = 0;
    for (std::size_t start = h * rows_per_head; start < rows; start += heads * rows_per_head) {
      const std::size_t end = start + rows_per_head < rows ? start + rows_per_head : rows;
      for (std::size_t r = start; r < end; ++r) acc += static_cast<double>(per_row[r]);
    }
    out[h] = static_cast<T>(acc);
  }
}

/// The plainest row-scaled normalizer: one scale per row from an array, and dL/ds per row into
/// an optional array. `scales` and `dscales` hold one value per row (length = number of rows the
/// consumer will visit); the policy does not own them. A scale that is not finite and > 0 gives
/// that row NaN, like an ASEntmax temperature out of range.
template <class T, class Base>
struct PerRowScale {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::PerRowScale: T must be float or double");
  static constexpr bool is_row_scaled = true;
  static constexpr bool is_sparse = Base::is_sparse;
  using base_type = Base;
  using value_type = T;

  Base base_map;
  const T* scales = nullptr;
  T* dscales = nullptr;  ///< optional sink: dscales[row] = dL/ds of that row

  PerRowScale(Base b, const T* s, T* ds = nullptr) : base_map(std::move(b)), scales(s), dscales(ds) {}

  const Base& base() const { return base_map; }
  T scale(std::size_t row, std::size_t npos) const {
    if (npos < 2) return T(1);
    const T s = scales[row];
    return (std::isfinite(s) && s > T(0)) ? s : std::numeric_limits<T>::quiet_NaN();
  }
  void scale_backward(std::size_t row, std::size_t npos, T ds) const {
    if (dscales) dscales[row] = npos < 2 ? T(0) : ds;
  }
};

}  // namespace entmax
