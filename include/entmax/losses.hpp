// Fenchel–Young losses for the α-entmax family (Blondel, Martins, Niculae 2020): the natural
// training losses of softmax (cross-entropy), sparsemax, entmax-1.5 and any α-entmax.
#pragma once

#include <entmax/config.hpp>
#include <entmax/error.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_stats.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace entmax {

/// How per-row losses are combined.
enum class Reduction {
  none,  ///< one loss per row (written to `row_losses`); the return value is their sum
  sum,   ///< Σ over the rows that are not ignored
  mean,  ///< Σ / (number of rows not ignored); 0 when every row is ignored (never NaN)
};

/// Options of the loss functions.
struct LossOptions {
  std::int64_t ignore_index = -100;  ///< rows whose target equals this give loss 0 and gradient 0
  Reduction reduction = Reduction::mean;
};

namespace detail {

template <class N, class = void>
struct has_alpha_member : std::false_type {};
template <class N>
struct has_alpha_member<N, std::void_t<decltype(std::declval<const N&>().alpha)>> : std::true_type {};

/// Tsallis α-entropy (1 − Σ p^α) / (α(α − 1)) in double over the non-zero p.
template <class T>
double tsallis_entropy(const T* p, std::size_t n, double alpha) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
    if (v != 0) s += alpha == 2.0 ? v * v : (alpha == 1.5 ? v * std::sqrt(v) : std::pow(v, alpha));
  }
  return (1.0 - s) / (alpha * (alpha - 1.0));
}

/// Shannon entropy −Σ p log p in double over the non-zero p.
template <class T>
double shannon_entropy(const T* p, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = static_cast<double>(p[i]);
    if (v != 0) s -= v * std::log(v);
  }
  return s;
}

/// The entropy Ω of the Fenchel–Young loss of normalizer N (the regulariser whose argmax is N).
template <class N, class T>
double fy_entropy(const N& norm, const T* p, std::size_t n) {
  using D = std::decay_t<N>;
  if constexpr (std::is_same_v<D, Softmax>) {
    (void)norm;
    return shannon_entropy(p, n);
  } else if constexpr (std::is_same_v<D, Sparsemax>) {
    (void)norm;
    return tsallis_entropy(p, n, 2.0);
  } else if constexpr (std::is_same_v<D, Entmax15>) {
    (void)norm;
    return tsallis_entropy(p, n, 1.5);
  } else {
    static_assert(
        has_alpha_member<D>::value,
        "entmax::fenchel_young_loss: the normalizer must be Softmax, Sparsemax, Entmax15 or have an "
        "`alpha` member (EntmaxBisect, EntmaxSort, EntmaxAlpha)");
    return tsallis_entropy(p, n, static_cast<double>(norm.alpha));
  }
}

}  // namespace detail

/// Fenchel–Young loss of a batch of score rows with integer targets:
///   L(z, y) = Ω(p*) + ⟨p* − e_y, z⟩,  p* = norm(z),
/// with Ω the entropy that norm maximises: Shannon −Σ p log p for Softmax (L is then the
/// cross-entropy logsumexp(z) − z_y), Tsallis (1 − Σ p^α)/(α(α − 1)) for α-entmax
/// ((1 − Σ p²)/2 for Sparsemax). L ≥ 0, and L = 0 iff p* = e_y. ∂L/∂z = p* − e_y.
///
/// Parameters: `z` holds `rows` rows of `n` scores, row r at z + r·ld (ld ≥ n); `targets[r]` in
/// [0, n) or equal to opt.ignore_index; `row_losses` (length rows, may be null unless
/// opt.reduction is none) receives each row's loss (0 for ignored rows); `dz` (may be null, same
/// layout as z, must not alias z) receives the gradient of the returned value: p* − e_y, divided by
/// the number of non-ignored rows for mean, zero rows for ignored ones. Returns the reduced loss
/// (for none: the sum of the row losses).
///
/// Numerics: row sums in double, a row loss that rounds below 0 is returned as 0 (L ≥ 0 exactly);
/// ⟨p* − e_y, z⟩ is formed as Σ p_i (z_i − z_y) over the support,
/// so masked entries (z = −inf, p = 0) never form 0·(−inf), and a large common offset cancels.
/// A target whose score is −inf (masked) gives loss +inf and the finite gradient p* − e_y; use
/// ignore_index for rows that should not count. NaN or +inf in a row gives a NaN loss.
///
/// Errors (before any write): std::invalid_argument if ld < n, if a target is outside [0, n) and
/// not ignore_index, or if reduction is none and row_losses is null. Empty extents are no-ops
/// (return 0).
template <class N, class T>
T fenchel_young_loss(const N& norm, const T* z, std::size_t rows, std::size_t n, std::size_t ld,
                     const std::int64_t* targets, T* row_losses, T* dz, const LossOptions& opt = {}) {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::fenchel_young_loss: T must be float or double");
  static_assert(is_normalizer_v<N, T>, "entmax::fenchel_young_loss: N must model the Normalizer trait");
  constexpr const char* fn = "entmax::fenchel_young_loss";
  if (ld < n)
    detail::raise(ErrorKind::invalid_argument,
                  detail::message(fn, ": ld must be >= n (got ", ld, " < ", n, ")"));
  if (opt.reduction == Reduction::none && row_losses == nullptr && rows != 0) {
    detail::raise(ErrorKind::invalid_argument, detail::message(fn, ": reduction none needs row_losses"));
  }
  std::size_t counted = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int64_t y = targets[r];
    if (y == opt.ignore_index) continue;
    if (y < 0 || static_cast<std::uint64_t>(y) >= static_cast<std::uint64_t>(n)) {
      detail::raise(ErrorKind::invalid_argument,
                    detail::message(fn, ": targets[", r, "] = ", y, " outside [0, ", n,
                                    ") and not ignore_index (", opt.ignore_index, ")"));
    }
    ++counted;
  }
  if (rows == 0) return T(0);
  const double grad_scale =
      opt.reduction == Reduction::mean ? (counted ? 1.0 / static_cast<double>(counted) : 0.0) : 1.0;
  std::vector<T> p(n);
  double total = 0;
  for (std::size_t r = 0; r < rows; ++r) {
    const T* zr = z + r * ld;
    T* dzr = dz ? dz + r * ld : nullptr;
    const std::int64_t y = targets[r];
    if (y == opt.ignore_index) {
      if (row_losses) row_losses[r] = T(0);
      if (dzr)
        for (std::size_t i = 0; i < n; ++i) dzr[i] = T(0);
      continue;
    }
    const std::size_t yi = static_cast<std::size_t>(y);
    norm.forward(zr, p.data(), n);
    const double zy = static_cast<double>(zr[yi]);
    double loss;
    if (zy == -std::numeric_limits<double>::infinity()) {
      loss = std::numeric_limits<double>::infinity();
      for (std::size_t i = 0; i < n; ++i) {  // still NaN for a NaN/+inf row
        if (std::isnan(static_cast<double>(p[i]))) loss = static_cast<double>(p[i]);
      }
    } else {
      double lin = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double pi = static_cast<double>(p[i]);
        if (pi != 0) lin += pi * (static_cast<double>(zr[i]) - zy);
      }
      loss = detail::fy_entropy(norm, p.data(), n) + lin;
      if (loss < 0) loss = 0;  // L ≥ 0 exactly; rounding near p* = e_y can dip below (NaN stays NaN)
    }
    if (row_losses) row_losses[r] = static_cast<T>(loss);
    total += loss;
    if (dzr) {
      for (std::size_t i = 0; i < n; ++i) dzr[i] = static_cast<T>(static_cast<double>(p[i]) * grad_scale);
      dzr[yi] = static_cast<T>((static_cast<double>(p[yi]) - 1.0) * grad_scale);
    }
  }
  if (opt.reduction == Reduction::mean)
    return counted ? static_cast<T>(total / static_cast<double>(counted)) : T(0);
  return static_cast<T>(total);
}

/// Result of the Eigen form of fenchel_young_loss.
template <class T>
struct LossResult {
  T loss;                                                                ///< the reduced loss
  Eigen::Matrix<T, Eigen::Dynamic, 1> row_losses;                        ///< one per row (0 if ignored)
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> dz;  ///< gradient of `loss`
};

/// Fenchel–Young loss of the rows of an Eigen matrix z [rows, n] (any storage order, blocks,
/// Maps) with one target per row; `targets.size()` must equal z.rows() (std::invalid_argument).
/// Same definition, options, numerics and errors as the pointer form; rows that are not
/// contiguous are copied to a row-major buffer first.
template <class N, class Derived>
LossResult<typename Derived::Scalar> fenchel_young_loss(const N& norm, const Eigen::MatrixBase<Derived>& z,
                                                        const std::vector<std::int64_t>& targets,
                                                        const LossOptions& opt = {}) {
  using T = typename Derived::Scalar;
  static_assert(detail::is_supported_scalar_v<T>, "entmax::fenchel_young_loss: T must be float or double");
  if (targets.size() != static_cast<std::size_t>(z.rows())) {
    detail::raise(ErrorKind::invalid_argument,
                  detail::message("entmax::fenchel_young_loss: need one target per row (got ", targets.size(),
                                  " targets for ", z.rows(), " rows)"));
  }
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Ref<const RowMat, 0, Eigen::OuterStride<>> zr(z);  // copies only non-row-major inputs
  RowMat packed;
  const T* data = zr.data();
  if (zr.rows() > 1 && zr.outerStride() != zr.cols()) {  // dz is packed: z must share its layout
    packed = zr;
    data = packed.data();
  }
  const std::size_t rows = static_cast<std::size_t>(zr.rows()), n = static_cast<std::size_t>(zr.cols());
  LossResult<T> out{T(0), Eigen::Matrix<T, Eigen::Dynamic, 1>(zr.rows()), RowMat(zr.rows(), zr.cols())};
  out.loss =
      fenchel_young_loss(norm, data, rows, n, n, targets.data(), out.row_losses.data(), out.dz.data(), opt);
  return out;
}

/// fenchel_young_loss over a contiguous [rows, n] row-major batch (ld = n).
template <class N, class T>
T fenchel_young_loss(const N& norm, const T* z, std::size_t rows, std::size_t n, const std::int64_t* targets,
                     T* row_losses, T* dz, const LossOptions& opt = {}) {
  return fenchel_young_loss(norm, z, rows, n, n, targets, row_losses, dz, opt);
}

/// Sparsemax loss (Martins & Astudillo 2016): fenchel_young_loss with Sparsemax.
template <class T>
T sparsemax_loss(const T* z, std::size_t rows, std::size_t n, const std::int64_t* targets, T* row_losses,
                 T* dz, const LossOptions& opt = {}) {
  return fenchel_young_loss(Sparsemax{}, z, rows, n, n, targets, row_losses, dz, opt);
}

/// Entmax-1.5 loss: fenchel_young_loss with Entmax15.
template <class T>
T entmax15_loss(const T* z, std::size_t rows, std::size_t n, const std::int64_t* targets, T* row_losses,
                T* dz, const LossOptions& opt = {}) {
  return fenchel_young_loss(Entmax15{}, z, rows, n, n, targets, row_losses, dz, opt);
}

/// α-entmax loss for any α > 1 (std::domain_error otherwise): fenchel_young_loss with
/// EntmaxBisect{alpha}.
template <class T>
T entmax_bisect_loss(const T* z, std::size_t rows, std::size_t n, T alpha, const std::int64_t* targets,
                     T* row_losses, T* dz, const LossOptions& opt = {}) {
  detail::check_alpha("entmax::entmax_bisect_loss", alpha);
  return fenchel_young_loss(EntmaxBisect<T>{alpha}, z, rows, n, n, targets, row_losses, dz, opt);
}

/// Softmax cross-entropy as the Fenchel–Young loss of Softmax: logsumexp(z) − z_y.
template <class T>
T softmax_loss(const T* z, std::size_t rows, std::size_t n, const std::int64_t* targets, T* row_losses, T* dz,
               const LossOptions& opt = {}) {
  return fenchel_young_loss(Softmax{}, z, rows, n, n, targets, row_losses, dz, opt);
}

}  // namespace entmax
