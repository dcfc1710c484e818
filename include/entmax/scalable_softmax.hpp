// Scalable softmax (SSMax, Nakanishi 2025): softmax(s · log(npos) · z) with a learnable s, so
// that the attention of a row does not flatten out as the number of keys grows.
#pragma once

#include <entmax/config.hpp>
#include <entmax/error.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/row_stats.hpp>
#include <entmax/softmax.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

namespace entmax {

/// Gradients of one scalable-softmax row.
template <class T>
struct ScalableSoftmaxGrad {
  T ds;      ///< dL/ds = dscale · log(npos)
  T dscale;  ///< dL/dc for the effective scale c = s · log(npos): ⟨J(p)ᵀ dp, z⟩ (unmasked entries)
};

namespace detail {
/// c = s · log(npos) after the checks: s finite and > 0 (domain_error), npos >= 2 (invalid_argument).
template <class T>
T checked_ssmax_scale(const char* fn, T s, std::size_t npos) {
  check_positive(fn, "s", s);
  if (npos < 2) {
    raise(ErrorKind::invalid_argument,
          message(fn, ": npos must be >= 2 (got ", npos,
                  "); npos = visible keys + 1 and the scale uses log(npos), which is 0 at npos = 1"));
  }
  const double c = static_cast<double>(s) * std::log(static_cast<double>(npos));
  const T ct = static_cast<T>(c);
  if (!(std::isfinite(ct) && ct > T(0))) {
    raise(ErrorKind::domain_error, message(fn, ": temperature s * log(npos) must be finite and > 0 (got ", c,
                                           " for s = ", s, ", npos = ", npos, ")"));
  }
  return ct;
}
}  // namespace detail

/// Scalable softmax forward on one row: p = softmax(c · z), c = s · log(npos), npos = visible
/// keys + 1 (the convention of ASEntmax; causal query i: npos = i + 2).
/// Evaluated as softmax(c · (z − max z)), the same map, so c · z never overflows for huge finite
/// scores. Returns softmax's RowStats of that shifted scaled row c·(z − max z): max = 0 for a
/// valid row (−inf for an all −inf row), tau in the same units. z and p may alias.
/// Checks (before any write): s finite and > 0, c finite and > 0 (std::domain_error); npos >= 2
/// (std::invalid_argument). n = 0 is a no-op. −inf scores get p = 0; an all −inf row gives 0;
/// NaN or +inf gives a NaN row.
template <class T>
RowStats<T> scalable_softmax(const T* z, T* p, std::size_t n, T s, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::scalable_softmax: T must be float or double");
  const T c = detail::checked_ssmax_scale("entmax::scalable_softmax", s, npos);
  if (n == 0) return {-std::numeric_limits<T>::infinity(), T(0), 0};
  detail::scale_shifted_row(z, p, n, c);
  return softmax(static_cast<const T*>(p), p, n);
}

/// Scalable softmax backward on one row. Given the UNSCALED scores z, p = scalable_softmax(z, …)
/// and dp = dL/dp: writes dz = c · J(p)ᵀ dp and returns dL/ds and dL/dc, where
/// dL/dc = ⟨J(p)ᵀ dp, z⟩ over the unmasked entries (double accumulation; 0·(−inf) never formed),
/// computed as ⟨J(p)ᵀ dp, z − max z⟩: equal since the gradient sums to 0, without the overflow
/// and cancellation of huge finite z.
/// dz may alias dp, not z or p. Same checks as scalable_softmax.
template <class T>
ScalableSoftmaxGrad<T> scalable_softmax_backward(const T* z, const T* p, const T* dp, T* dz, std::size_t n,
                                                 T s, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>,
                "entmax::scalable_softmax_backward: T must be float or double");
  const T c = detail::checked_ssmax_scale("entmax::scalable_softmax_backward", s, npos);
  if (n == 0) return {T(0), T(0)};
  softmax_backward(p, dp, dz, n);
  const T dc = detail::shifted_dot_then_scale(dz, z, n, c);
  return {static_cast<T>(static_cast<double>(dc) * std::log(static_cast<double>(npos))), dc};
}

/// Scalable softmax as a row-scaled normalizer (see row_scaled.hpp): row r with npos uses
/// p = softmax(s_h · log(npos) · z).
///
/// s is either global (`ScalableSoftmax<T>(s)`, stored by value) or per head
/// (`ScalableSoftmax<T>::per_head(s, heads, rows_per_head)`: row r uses
/// h = (r / rows_per_head) % heads; rows_per_head = Nq for attention; the array is not owned),
/// as in the authors' code (s per head, initialised near 1).
///
/// The optional gradient sink (set_gradient_sink) is PER ROW so rows can run concurrently:
/// scale_backward(r, npos, dc) writes ds_rows[r] = dc · log(npos), the row's contribution to
/// dL/ds_h. Sum them with sum_rows_per_head (row_scaled.hpp) — or over all rows for a global s.
///
/// Construction checks: every s finite and > 0 (std::domain_error). scale() returns 1 for a
/// fully masked row (npos < 2) and never throws.
template <class T>
class ScalableSoftmax {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::ScalableSoftmax: T must be float or double");

 public:
  static constexpr bool is_row_scaled = true;
  static constexpr bool is_sparse = false;
  using base_type = Softmax;
  using value_type = T;

  /// One global s.
  explicit ScalableSoftmax(T s = T(1)) : global_(s) {
    detail::check_positive("entmax::ScalableSoftmax", "s", s);
  }

  /// One s per head: s[h] for h < heads; row r uses h = (r / rows_per_head) % heads.
  static ScalableSoftmax per_head(const T* s, std::size_t heads, std::size_t rows_per_head) {
    constexpr const char* fn = "entmax::ScalableSoftmax::per_head";
    if (heads == 0 || rows_per_head == 0 || s == nullptr) {
      detail::raise(ErrorKind::invalid_argument,
                    detail::message(fn, ": need heads > 0, rows_per_head > 0 and s != null (got heads = ",
                                    heads, ", rows_per_head = ", rows_per_head, ")"));
    }
    for (std::size_t h = 0; h < heads; ++h) {
      if (!(std::isfinite(s[h]) && s[h] > T(0))) {
        detail::raise(ErrorKind::domain_error,
                      detail::message(fn, ": s must be finite and > 0 (got s[", h, "] = ", s[h], ")"));
      }
    }
    ScalableSoftmax r;
    r.per_head_ = s;
    r.heads_ = heads;
    r.rows_per_head_ = rows_per_head;
    return r;
  }

  /// Optional per-row gradient output (may be null). Not owned.
  void set_gradient_sink(T* ds_rows) { ds_rows_ = ds_rows; }

  const base_type& base() const { return base_; }
  /// Index of the s used by `row` (0 for a global s).
  std::size_t param_index(std::size_t row) const { return per_head_ ? (row / rows_per_head_) % heads_ : 0; }
  /// The learnable s of `row` (before the log(npos) factor).
  T s(std::size_t row) const { return per_head_ ? per_head_[param_index(row)] : global_; }

  /// c = s_h · log(npos) (in double, rounded); 1 when npos < 2.
  T scale(std::size_t row, std::size_t npos) const {
    if (npos < 2) return T(1);
    return static_cast<T>(static_cast<double>(s(row)) * std::log(static_cast<double>(npos)));
  }
  /// ds_rows[row] = dc · log(npos) (0 when npos < 2).
  void scale_backward(std::size_t row, std::size_t npos, T dc) const {
    if (!ds_rows_) return;
    ds_rows_[row] =
        npos < 2 ? T(0) : static_cast<T>(static_cast<double>(dc) * std::log(static_cast<double>(npos)));
  }

  /// p = softmax(c_row · z) (row_scaled_forward). z and p may alias.
  RowStats<T> forward(std::size_t row, std::size_t npos, const T* z, T* p, std::size_t n) const {
    return row_scaled_forward(*this, row, npos, z, p, n);
  }
  /// dz = c·Jᵀdp, records the row's ds, returns dL/dc (row_scaled_backward).
  T backward(std::size_t row, std::size_t npos, const T* z, const T* p, const T* dp, T* dz,
             std::size_t n) const {
    return row_scaled_backward(*this, row, npos, z, p, dp, dz, n);
  }

 private:
  Softmax base_{};
  T global_ = T(1);
  const T* per_head_ = nullptr;
  std::size_t heads_ = 1;
  std::size_t rows_per_head_ = 1;
  T* ds_rows_ = nullptr;
};

}  // namespace entmax
