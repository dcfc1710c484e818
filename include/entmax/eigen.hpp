// Row-wise normalizers over Eigen matrices of either storage order: every row of a score matrix
// z is mapped to a row of probabilities p by any Normalizer policy (or row-scaled policy), and
// back-propagated the same way.
#pragma once

#include <entmax/config.hpp>
#include <entmax/detail/policy_rows.hpp>
#include <entmax/error.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/row_stats.hpp>

#include <Eigen/Core>

#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

namespace entmax {

namespace detail {

/// Whether expression D exposes its coefficients through data() and strides.
template <class D>
inline constexpr bool has_direct_access_v = (Eigen::internal::traits<D>::Flags & Eigen::DirectAccessBit) != 0;

/// Pointer to row i of x when its elements are contiguous in memory, nullptr otherwise and for
/// empty rows (their data pointer may be null: no arithmetic on it).
template <class D>
auto contiguous_row(const Eigen::MatrixBase<D>& x, Eigen::Index i) {
  using Scalar = typename D::Scalar;
  if constexpr (has_direct_access_v<D>) {
    if (x.cols() > 0 && (x.cols() == 1 || x.colStride() == 1))
      return static_cast<const Scalar*>(x.derived().data() + i * x.rowStride());
  }
  (void)i;
  return static_cast<const Scalar*>(nullptr);
}

/// Writable pointer to row i of x when contiguous and writable, nullptr otherwise.
template <class D>
auto contiguous_row_mut(const Eigen::MatrixBase<D>& x, Eigen::Index i) {
  using Scalar = typename D::Scalar;
  if constexpr (has_direct_access_v<D> && (Eigen::internal::traits<D>::Flags & Eigen::LvalueBit) != 0) {
    auto& xm = const_cast<Eigen::MatrixBase<D>&>(x);
    if (x.cols() > 0 && (x.cols() == 1 || x.colStride() == 1))
      return static_cast<Scalar*>(xm.derived().data() + i * x.rowStride());
  }
  (void)i;
  return static_cast<Scalar*>(nullptr);
}

/// A per-thread scratch buffer of at least `count` elements, reused across calls. Callers hold the
/// pointer only while they do not call into anything that may use the same buffer.
template <class T>
T* scratch_rows(std::size_t count) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

/// Row i of x as a contiguous pointer: the row itself when contiguous, else a copy in `scratch`.
/// Empty rows are never touched (x.row(i) of a null-data matrix would offset a null pointer).
template <class D>
const typename D::Scalar* read_row(const Eigen::MatrixBase<D>& x, Eigen::Index i,
                                   typename D::Scalar* scratch) {
  if (x.cols() == 0) return scratch;
  if (const auto* row = contiguous_row(x, i)) return row;
  using RowVec = Eigen::Matrix<typename D::Scalar, 1, Eigen::Dynamic>;
  Eigen::Map<RowVec>(scratch, x.cols()) = x.row(i);
  return scratch;
}

/// Copies a finished row from `src` into row i of x unless src already is that row.
template <class D>
void write_row(const Eigen::MatrixBase<D>& x, Eigen::Index i, const typename D::Scalar* src) {
  auto& xm = const_cast<Eigen::MatrixBase<D>&>(x);
  if (x.cols() == 0 || contiguous_row_mut(x, i) == src) return;
  using RowVec = Eigen::Matrix<typename D::Scalar, 1, Eigen::Dynamic>;
  xm.row(i) = Eigen::Map<const RowVec>(src, x.cols());
}

template <class A, class B>
void check_same_shape(const char* fn, const char* a_name, const Eigen::MatrixBase<A>& a, const char* b_name,
                      const Eigen::MatrixBase<B>& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    raise(ErrorKind::invalid_argument, message(fn, ": shape mismatch: ", a_name, " is ", a.rows(), "x",
                                               a.cols(), ", ", b_name, " is ", b.rows(), "x", b.cols()));
  }
}

/// npos of every row: the caller's, or n + 1 (all keys visible) for 0. Written so that the
/// compiler sees that n + 1 cannot wrap around (n counts matrix columns).
inline std::size_t rowwise_npos(std::size_t npos, std::size_t n) {
  if (npos != 0) return npos;
  return n < std::numeric_limits<std::size_t>::max() ? n + 1 : n;
}

template <class Norm, class T>
inline constexpr bool is_rowwise_policy_v = is_normalizer_v<Norm, T> || is_row_scaled_v<Norm>;

}  // namespace detail

/// Maps every row of z to a row of probabilities: p.row(i) = norm(z.row(i)).
///
/// `norm` is any Normalizer policy (Softmax{}, Sparsemax{}, Entmax15{}, EntmaxBisect{a}, …) or a
/// row-scaled policy (ASEntmax, scalable softmax, PerRowScale), whose row index is the matrix row
/// and whose `npos` is the argument below (0, the default, means cols + 1: every key visible).
/// z and p are matrices, blocks, Maps or Refs of either storage order with equal shapes and the
/// same scalar type (float or double). Rows that are contiguous in memory (RowMajor, or a single
/// column) are normalized in place without copies; other rows go through a per-thread scratch
/// row. p may be the same matrix as z (in place); any other overlap is undefined.
/// If `stats` is not null it receives z.rows() RowStats (max, tau, support) — for a row-scaled
/// policy they describe the scaled row. Empty rows give stats {−inf, 0, 0}.
/// Throws std::invalid_argument (before writing anything) when the shapes differ. Numerics are
/// the row kernel's: −inf entries get exact zeros, an all −inf row gives zeros, NaN/+inf a NaN row.
template <class Norm, class DZ, class DP>
void normalize_rows(const Norm& norm, const Eigen::MatrixBase<DZ>& z, const Eigen::MatrixBase<DP>& p,
                    RowStats<typename DZ::Scalar>* stats = nullptr, std::size_t npos = 0) {
  using T = typename DZ::Scalar;
  static_assert(detail::is_supported_scalar_v<T>,
                "entmax::normalize_rows: scalar type must be float or double");
  static_assert(std::is_same_v<T, typename DP::Scalar>,
                "entmax::normalize_rows: z and p must have the same scalar type");
  static_assert(detail::is_rowwise_policy_v<Norm, T>,
                "entmax::normalize_rows: Norm must model the Normalizer trait or be a row-scaled policy");
  detail::check_same_shape("entmax::normalize_rows", "z", z, "p", p);
  detail::check_policy_rows("entmax::normalize_rows", norm, static_cast<std::size_t>(z.rows()));
  const Eigen::Index rows = z.rows();
  const auto n = static_cast<std::size_t>(z.cols());
  if (n == 0) {
    if (stats) {
      for (Eigen::Index i = 0; i < rows; ++i)
        stats[i] = RowStats<T>{-std::numeric_limits<T>::infinity(), T(0), 0};
    }
    return;
  }
  const std::size_t visible = detail::rowwise_npos(npos, n);
  T* scratch = detail::scratch_rows<T>(2 * n);
  for (Eigen::Index i = 0; i < rows; ++i) {
    const T* zr = detail::read_row(z, i, scratch);
    T* pr = detail::contiguous_row_mut(p, i);
    if (pr == nullptr) pr = scratch + n;
    RowStats<T> s;
    if constexpr (is_row_scaled_v<Norm>) {
      s = row_scaled_forward(norm, static_cast<std::size_t>(i), visible, zr, pr, n);
    } else {
      s = norm.forward(zr, pr, n);
    }
    detail::write_row(p, i, pr);
    if (stats) stats[i] = s;
  }
}

/// As above, storing the per-row statistics in `stats` (resized to z.rows()).
template <class Norm, class DZ, class DP>
void normalize_rows(const Norm& norm, const Eigen::MatrixBase<DZ>& z, const Eigen::MatrixBase<DP>& p,
                    std::vector<RowStats<typename DZ::Scalar>>& stats, std::size_t npos = 0) {
  detail::check_same_shape("entmax::normalize_rows", "z", z, "p", p);
  stats.resize(static_cast<std::size_t>(z.rows()));
  normalize_rows(norm, z, p, stats.data(), npos);
}

/// Returns the row-wise normalized copy of z, with z's storage order (see normalize_rows above).
template <class Norm, class DZ>
typename DZ::PlainObject normalize_rows(const Norm& norm, const Eigen::MatrixBase<DZ>& z,
                                        std::size_t npos = 0) {
  typename DZ::PlainObject p(z.rows(), z.cols());
  normalize_rows(norm, z, p, static_cast<RowStats<typename DZ::Scalar>*>(nullptr), npos);
  return p;
}

/// Number of non-zero outputs of each row (the `support` of normalize_rows' stats), as a vector.
template <class Norm, class DZ>
Eigen::Matrix<Eigen::Index, Eigen::Dynamic, 1> support_sizes(const Norm& norm, const Eigen::MatrixBase<DZ>& z,
                                                             std::size_t npos = 0) {
  typename DZ::PlainObject p(z.rows(), z.cols());
  std::vector<RowStats<typename DZ::Scalar>> stats;
  normalize_rows(norm, z, p, stats, npos);
  Eigen::Matrix<Eigen::Index, Eigen::Dynamic, 1> out(z.rows());
  for (Eigen::Index i = 0; i < z.rows(); ++i)
    out(i) = static_cast<Eigen::Index>(stats[static_cast<std::size_t>(i)].support);
  return out;
}

/// Row-wise vector-Jacobian product of a Normalizer: dz.row(i) = J(p.row(i))ᵀ dp.row(i), where p
/// is the forward output. Shapes of p, dp and dz must be equal (std::invalid_argument otherwise,
/// before any write); either storage order, blocks, Maps. dz may be the same matrix as dp; any
/// other overlap is undefined. Accumulation and NaN behaviour are the row kernel's. Row-scaled
/// policies need the scores too: use the overload taking z.
template <class Norm, class DP, class DDP, class DDZ>
void normalize_rows_backward(const Norm& norm, const Eigen::MatrixBase<DP>& p,
                             const Eigen::MatrixBase<DDP>& dp, const Eigen::MatrixBase<DDZ>& dz) {
  using T = typename DP::Scalar;
  static_assert(detail::is_supported_scalar_v<T>,
                "entmax::normalize_rows_backward: scalar type must be float or double");
  static_assert(std::is_same_v<T, typename DDP::Scalar> && std::is_same_v<T, typename DDZ::Scalar>,
                "entmax::normalize_rows_backward: p, dp and dz must have the same scalar type");
  static_assert(is_normalizer_v<Norm, T>,
                "entmax::normalize_rows_backward: Norm must model the Normalizer trait (row-scaled "
                "policies: pass z as well)");
  detail::check_same_shape("entmax::normalize_rows_backward", "p", p, "dp", dp);
  detail::check_same_shape("entmax::normalize_rows_backward", "p", p, "dz", dz);
  const auto n = static_cast<std::size_t>(p.cols());
  if (n == 0) return;
  T* scratch = detail::scratch_rows<T>(3 * n);
  for (Eigen::Index i = 0; i < p.rows(); ++i) {
    const T* pr = detail::read_row(p, i, scratch);
    const T* dpr = detail::read_row(dp, i, scratch + n);
    T* dzr = detail::contiguous_row_mut(dz, i);
    if (dzr == nullptr) dzr = scratch + 2 * n;
    norm.backward(pr, dpr, dzr, n);
    detail::write_row(dz, i, dzr);
  }
}

/// Row-wise backward given the scores z as well: for a Normalizer it is the overload above (z is
/// only shape-checked); for a row-scaled policy it writes dz = s · J_base(p)ᵀ dp and reports
/// dL/ds of each row through the policy's scale_backward(row, npos, ds) (row = matrix row, npos
/// as in normalize_rows: 0 means cols + 1). z, p, dp, dz have equal shapes (std::invalid_argument
/// otherwise). dz may be the same matrix as dp, not as z or p.
template <class Norm, class DZ, class DP, class DDP, class DDZ>
void normalize_rows_backward(const Norm& norm, const Eigen::MatrixBase<DZ>& z, const Eigen::MatrixBase<DP>& p,
                             const Eigen::MatrixBase<DDP>& dp, const Eigen::MatrixBase<DDZ>& dz,
                             std::size_t npos = 0) {
  using T = typename DZ::Scalar;
  static_assert(detail::is_supported_scalar_v<T>,
                "entmax::normalize_rows_backward: scalar type must be float or double");
  static_assert(std::is_same_v<T, typename DP::Scalar> && std::is_same_v<T, typename DDP::Scalar> &&
                    std::is_same_v<T, typename DDZ::Scalar>,
                "entmax::normalize_rows_backward: z, p, dp and dz must have the same scalar type");
  static_assert(
      detail::is_rowwise_policy_v<Norm, T>,
      "entmax::normalize_rows_backward: Norm must model the Normalizer trait or be a row-scaled policy");
  detail::check_same_shape("entmax::normalize_rows_backward", "z", z, "p", p);
  if constexpr (!is_row_scaled_v<Norm>) {
    normalize_rows_backward(norm, p, dp, dz);
    (void)npos;
  } else {
    detail::check_same_shape("entmax::normalize_rows_backward", "z", z, "dp", dp);
    detail::check_same_shape("entmax::normalize_rows_backward", "z", z, "dz", dz);
    detail::check_policy_rows("entmax::normalize_rows_backward", norm, static_cast<std::size_t>(z.rows()));
    const auto n = static_cast<std::size_t>(z.cols());
    const std::size_t visible = detail::rowwise_npos(npos, n);
    T* scratch = detail::scratch_rows<T>(4 * n);
    for (Eigen::Index i = 0; i < z.rows(); ++i) {
      const T* zr = detail::read_row(z, i, scratch);
      const T* pr = detail::read_row(p, i, scratch + n);
      const T* dpr = detail::read_row(dp, i, scratch + 2 * n);
      T* dzr = detail::contiguous_row_mut(dz, i);
      if (dzr == nullptr) dzr = scratch + 3 * n;
      row_scaled_backward(norm, static_cast<std::size_t>(i), visible, zr, pr, dpr, dzr, n);
      if (n != 0) detail::write_row(dz, i, dzr);
    }
  }
}

}  // namespace entmax
