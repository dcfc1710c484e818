// ASEntmax: α-entmax of a row scaled by a learnable, length-aware temperature
// s = δ + β · log(npos)^γ (Vasylenko et al., "Long-Context Generalization with Sparse Attention").
#pragma once

#include <entmax/config.hpp>
#include <entmax/entmax15.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/error.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/row_stats.hpp>

#include <cmath>
#include <cstddef>
#include <limits>

namespace entmax {

/// Partial derivatives of the ASEntmax scale s = δ + β·L^γ, L = log(npos).
template <class T>
struct ASEntmaxScaleGrad {
  T ds_dbeta;   ///< L^γ
  T ds_dgamma;  ///< β · L^γ · log L
  T ds_ddelta;  ///< 1
};

/// Gradients of one ASEntmax row w.r.t. its temperature parameters (and the scale itself).
template <class T>
struct ASEntmaxGrad {
  T dbeta;   ///< dL/dβ = ds · L^γ
  T dgamma;  ///< dL/dγ = ds · β · L^γ · log L
  T ddelta;  ///< dL/dδ = ds
  T ds;      ///< dL/ds = ⟨J_α(p)ᵀ dp, z⟩ over the unmasked entries
};

namespace detail {

inline void check_npos(const char* fn, std::size_t npos) {
  if (npos < 2) {
    raise(ErrorKind::invalid_argument,
          message(fn, ": npos must be >= 2 (got ", npos,
                  "); npos = visible keys + 1 and the scale uses log(npos), which is 0 at npos = 1"));
  }
}

/// s = δ + β·log(npos)^γ in double, no checks. npos >= 2.
inline double asentmax_scale_unchecked(double beta, double gamma, double delta, std::size_t npos) {
  const double l = std::log(static_cast<double>(npos));
  return delta + beta * std::pow(l, gamma);
}

/// Checks β, γ, δ finite, npos >= 2 and s finite and > 0; returns s (in double).
template <class T>
double checked_asentmax_scale(const char* fn, T beta, T gamma, T delta, std::size_t npos) {
  check_finite(fn, "beta", beta);
  check_finite(fn, "gamma", gamma);
  check_finite(fn, "delta", delta);
  check_npos(fn, npos);
  const double s = asentmax_scale_unchecked(beta, gamma, delta, npos);
  if (!(std::isfinite(s) && s > 0 && std::isfinite(static_cast<T>(s)) && static_cast<T>(s) > T(0))) {
    raise(ErrorKind::domain_error,
          message(fn, ": temperature s = delta + beta * log(npos)^gamma must be finite and > 0 (got ", s,
                  " for beta = ", beta, ", gamma = ", gamma, ", delta = ", delta, ", npos = ", npos, ")"));
  }
  return s;
}

/// ∂s/∂(β, γ, δ) in double; npos >= 2.
template <class T>
ASEntmaxScaleGrad<T> asentmax_scale_partials(double beta, double gamma, std::size_t npos) {
  const double l = std::log(static_cast<double>(npos));
  const double lg = std::pow(l, gamma);
  return {static_cast<T>(lg), static_cast<T>(beta * lg * std::log(l)), T(1)};
}

}  // namespace detail

/// The ASEntmax temperature s = δ + β · log(npos)^γ, computed in double and rounded to T.
/// npos is the number of visible keys + 1 (causal query i: npos = i + 2).
/// Throws std::invalid_argument if npos < 2 (log 1 = 0), std::domain_error if β, γ or δ is not
/// finite or if s is not finite and > 0 (a temperature must be positive).
template <class T>
T asentmax_scale(T beta, T gamma, T delta, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::asentmax_scale: T must be float or double");
  return static_cast<T>(detail::checked_asentmax_scale("entmax::asentmax_scale", beta, gamma, delta, npos));
}

/// Partial derivatives of s = δ + β·L^γ (L = log npos): ∂s/∂β = L^γ, ∂s/∂γ = β L^γ log L,
/// ∂s/∂δ = 1. Same checks as asentmax_scale (including s > 0), computed in double.
template <class T>
ASEntmaxScaleGrad<T> asentmax_scale_grad(T beta, T gamma, T delta, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::asentmax_scale_grad: T must be float or double");
  detail::checked_asentmax_scale("entmax::asentmax_scale_grad", beta, gamma, delta, npos);
  return detail::asentmax_scale_partials<T>(beta, gamma, npos);
}

/// ASEntmax forward on one row: p = α-entmax(s · z), s = δ + β · log(npos)^γ.
/// α == 1.5 uses the exact entmax15 kernel, any other α > 1 entmax_bisect.
/// Evaluated as α-entmax(s · (z − max z)), the same map (shift invariance), so s · z never
/// overflows for huge finite scores; entries more than the largest finite value below max z
/// become −inf, whose exact output is 0 anyway.
/// Returns the RowStats of that shifted scaled row s·(z − max z): max = 0 for a valid row
/// (−inf for an all −inf row), tau in the same shifted units, support as usual.
/// z and p may alias. Checks (before any write): α finite and > 1 (domain_error), the checks of
/// asentmax_scale. n = 0 is a no-op. −inf scores get p = 0 exactly; an all −inf row gives
/// p = 0; NaN or +inf in z gives a NaN row.
template <class T>
RowStats<T> asentmax(const T* z, T* p, std::size_t n, T alpha, T beta, T gamma, T delta, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::asentmax: T must be float or double");
  detail::check_alpha("entmax::asentmax", alpha);
  const T s = static_cast<T>(detail::checked_asentmax_scale("entmax::asentmax", beta, gamma, delta, npos));
  if (n == 0) return {-std::numeric_limits<T>::infinity(), T(0), 0};
  detail::scale_shifted_row(z, p, n, s);
  if (alpha == T(1.5)) return entmax15(static_cast<const T*>(p), p, n);
  return entmax_bisect(static_cast<const T*>(p), p, n, alpha);
}

/// ASEntmax backward on one row. Given the UNSCALED scores z, p = asentmax(z, …) and dp = dL/dp,
/// writes dz = dL/dz = s · J_α(p)ᵀ dp and returns dβ, dγ, dδ and ds = ⟨J_α(p)ᵀ dp, z⟩.
/// The dot product skips masked entries (z = −inf: their gradient is 0 and 0·(−inf) is NaN) and
/// accumulates in double; it is formed as ⟨J_α(p)ᵀ dp, z − max z⟩, equal because the gradient
/// sums to 0, and free of the overflow and cancellation of huge finite z. dz may alias dp, not z or p. Same
/// checks as asentmax. A fully masked row gives dz = 0 and zero parameter gradients. For a learnable α, dL/dα
/// at fixed scaled scores is entmax_alpha_grad(p, dp, n, alpha) (entmax_bisect.hpp); s does not enter it.
template <class T>
ASEntmaxGrad<T> asentmax_backward(const T* z, const T* p, const T* dp, T* dz, std::size_t n, T alpha, T beta,
                                  T gamma, T delta, std::size_t npos) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::asentmax_backward: T must be float or double");
  detail::check_alpha("entmax::asentmax_backward", alpha);
  const T s =
      static_cast<T>(detail::checked_asentmax_scale("entmax::asentmax_backward", beta, gamma, delta, npos));
  if (n == 0) return {T(0), T(0), T(0), T(0)};
  if (alpha == T(1.5)) {
    entmax15_backward(p, dp, dz, n);
  } else {
    entmax_bisect_backward(p, dp, dz, n, alpha);
  }
  const T ds = detail::shifted_dot_then_scale(dz, z, n, s);
  const ASEntmaxScaleGrad<T> g = detail::asentmax_scale_partials<T>(beta, gamma, npos);
  return {ds * g.ds_dbeta, ds * g.ds_dgamma, ds * g.ds_ddelta, ds};
}

/// α-entmax policy with α chosen at run time: the exact entmax15 kernels when α == 1.5, the
/// entmax_bisect kernels otherwise. Models Normalizer (see normalizer.hpp); the base map of
/// ASEntmax. Throws std::domain_error unless α is finite and > 1.
template <class Scalar = double>
struct EntmaxAlpha {
  static constexpr bool is_sparse = true;
  Scalar alpha;
  explicit EntmaxAlpha(Scalar a = Scalar(1.5)) : alpha(a) { detail::check_alpha("entmax::EntmaxAlpha", a); }
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    if (T(alpha) == T(1.5)) return entmax15(z, p, n);
    return entmax_bisect(z, p, n, T(alpha));
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    if (T(alpha) == T(1.5)) {
      entmax15_backward(p, dp, dz, n);
    } else {
      entmax_bisect_backward(p, dp, dz, n, T(alpha));
    }
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    if (T(alpha) == T(1.5)) {
      entmax15_from_stats(z, s, p, n);
    } else {
      entmax_from_stats(z, s, p, n, T(alpha));
    }
  }
};

/// ASEntmax as a row-scaled normalizer (see row_scaled.hpp): row r with npos uses
/// p = α-entmax(s_r · z), s_r = δ + β_r · log(npos)^γ_r.
///
/// Parameter layouts (the arrays are not owned; they must outlive the policy's use):
/// * per row (the authors' adaptive ASEntmax): `ASEntmax<T>(beta, gamma, rows, alpha, delta)`,
///   β and γ hold one value per score row, in the flat row order of row_scaled.hpp
///   ([batch, heads, Nq] for attention; see temperature.hpp for producing them);
/// * per head (non-adaptive ASEntmax): `ASEntmax<T>::per_head(beta, gamma, heads, rows_per_head,
///   alpha, delta)`, row r uses index (r / rows_per_head) % heads (rows_per_head = Nq).
///
/// Gradient sinks (optional, set with `set_gradient_sinks`) are always PER ROW, so that rows can
/// be processed concurrently: scale_backward(r, npos, ds) writes dbeta[r] = ds·L^γ,
/// dgamma[r] = ds·β·L^γ·log L and ddelta[r] = ds. For the per-head layout, sum them per head
/// with sum_rows_per_head (row_scaled.hpp).
///
/// Heads that must stay unscaled (the ALiBi half of the authors' NAPE scheme) use β = 0 there:
/// s = δ = 1 exactly, and the β, γ gradients recorded for them are simply not used.
///
/// Construction checks (std::domain_error): α finite and > 1; δ finite and ≥ 0; every β finite
/// and ≥ 0, every γ finite (O(rows), once). With β ≥ 0 and δ ≥ 0, s ≥ 0; a row whose s is 0 or
/// overflows (δ = 0 and β_r = 0, or an extreme γ) gets scale NaN, hence a NaN row — never a
/// silently wrong one. scale() and scale_backward() never throw.
template <class T>
class ASEntmax {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::ASEntmax: T must be float or double");

 public:
  static constexpr bool is_row_scaled = true;
  static constexpr bool is_sparse = true;
  using base_type = EntmaxAlpha<T>;
  using value_type = T;

  /// Per-row parameters: beta[r], gamma[r] for r < rows.
  ASEntmax(const T* beta, const T* gamma, std::size_t rows, T alpha = T(1.5), T delta = T(1))
      : ASEntmax(beta, gamma, rows, 0, alpha, delta) {}

  /// Per-head parameters: beta[h], gamma[h] for h < heads; row r uses h = (r / rows_per_head) % heads.
  static ASEntmax per_head(const T* beta, const T* gamma, std::size_t heads, std::size_t rows_per_head,
                           T alpha = T(1.5), T delta = T(1)) {
    if (rows_per_head == 0) {
      detail::raise(ErrorKind::invalid_argument,
                    "entmax::ASEntmax::per_head: rows_per_head must be > 0 (got 0)");
    }
    return ASEntmax(beta, gamma, heads, rows_per_head, alpha, delta);
  }

  /// Optional per-row gradient outputs (any may be null). Not owned.
  void set_gradient_sinks(T* dbeta, T* dgamma, T* ddelta = nullptr) {
    dbeta_ = dbeta;
    dgamma_ = dgamma;
    ddelta_ = ddelta;
  }

  const base_type& base() const { return base_; }
  T alpha() const { return base_.alpha; }
  T delta() const { return delta_; }
  /// Number of parameter entries (rows for the per-row layout, heads for the per-head one).
  std::size_t param_count() const { return count_; }
  /// Index into beta/gamma used by `row`.
  std::size_t param_index(std::size_t row) const {
    return rows_per_head_ ? (row / rows_per_head_) % count_ : row;
  }
  /// Whether a consumer visiting `rows` rows stays inside the parameter arrays: per row, rows must
  /// equal param_count(); per head, rows must be a multiple of heads · rows_per_head.
  bool accepts_rows(std::size_t rows) const {
    return rows_per_head_ ? rows % (count_ * rows_per_head_) == 0 : rows == count_;
  }

  /// s = δ + β_r · log(npos)^γ_r (computed in double); 1 when npos < 2 (fully masked row);
  /// NaN if s is not finite and > 0 in T.
  T scale(std::size_t row, std::size_t npos) const {
    if (npos < 2) return T(1);
    const std::size_t k = param_index(row);
    const T s = static_cast<T>(detail::asentmax_scale_unchecked(beta_[k], gamma_[k], delta_, npos));
    return (std::isfinite(s) && s > T(0)) ? s : std::numeric_limits<T>::quiet_NaN();
  }

  /// Records dL/ds of `row` into the per-row sinks as dβ, dγ, dδ (zeros when npos < 2).
  void scale_backward(std::size_t row, std::size_t npos, T ds) const {
    ASEntmaxScaleGrad<T> g{T(0), T(0), T(0)};
    if (npos >= 2) {
      const std::size_t k = param_index(row);
      g = detail::asentmax_scale_partials<T>(beta_[k], gamma_[k], npos);
    } else {
      ds = T(0);
    }
    if (dbeta_) dbeta_[row] = ds * g.ds_dbeta;
    if (dgamma_) dgamma_[row] = ds * g.ds_dgamma;
    if (ddelta_) ddelta_[row] = ds * g.ds_ddelta;
  }

  /// p = α-entmax(s_row · z) (row_scaled_forward). z and p may alias.
  RowStats<T> forward(std::size_t row, std::size_t npos, const T* z, T* p, std::size_t n) const {
    return row_scaled_forward(*this, row, npos, z, p, n);
  }
  /// dz = s·Jᵀdp, records the parameter gradients of `row`, returns ds (row_scaled_backward).
  T backward(std::size_t row, std::size_t npos, const T* z, const T* p, const T* dp, T* dz,
             std::size_t n) const {
    return row_scaled_backward(*this, row, npos, z, p, dp, dz, n);
  }

 private:
  ASEntmax(const T* beta, const T* gamma, std::size_t count, std::size_t rows_per_head, T alpha, T delta)
      : base_(alpha),
        beta_(beta),
        gamma_(gamma),
        count_(count),
        rows_per_head_(rows_per_head),
        delta_(delta) {
    constexpr const char* fn = "entmax::ASEntmax";
    if (!(std::isfinite(delta) && delta >= T(0))) {
      detail::raise(ErrorKind::domain_error,
                    detail::message(fn, ": delta must be finite and >= 0 (got ", delta, ")"));
    }
    if (count != 0 && (beta == nullptr || gamma == nullptr)) {
      detail::raise(ErrorKind::invalid_argument, detail::message(fn, ": beta and gamma must not be null"));
    }
    for (std::size_t k = 0; k < count; ++k) {
      if (!(std::isfinite(beta[k]) && beta[k] >= T(0))) {
        detail::raise(
            ErrorKind::domain_error,
            detail::message(fn, ": beta must be finite and >= 0 (got beta[", k, "] = ", beta[k], ")"));
      }
      if (!std::isfinite(gamma[k])) {
        detail::raise(ErrorKind::domain_error,
                      detail::message(fn, ": gamma must be finite (got gamma[", k, "] = ", gamma[k], ")"));
      }
    }
  }

  base_type base_;
  const T* beta_;
  const T* gamma_;
  std::size_t count_;
  std::size_t rows_per_head_;  // 0: per-row layout
  T delta_;
  T* dbeta_ = nullptr;
  T* dgamma_ = nullptr;
  T* ddelta_ = nullptr;
};

}  // namespace entmax
