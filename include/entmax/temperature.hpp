// The adaptive temperature of ASEntmax as its authors parameterise it: per token and head,
// β = softplus(w_β·x + b_β) and γ = 2·tanh(w_γ·x + b_γ) from the layer's input x; δ = 1.
#pragma once

#include <entmax/config.hpp>
#include <entmax/error.hpp>

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

namespace entmax {

namespace detail {
/// softplus(a) = log(1 + e^a), without overflow and accurate for large |a|.
template <class T>
T softplus(T a) {
  return a > T(0) ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a));
}
/// softplus'(a) = sigmoid(a), stable for both signs.
template <class T>
T sigmoid(T a) {
  if (a >= T(0)) return T(1) / (T(1) + std::exp(-a));
  const T e = std::exp(a);
  return e / (T(1) + e);
}
/// d/da [2 tanh a] = 2 / cosh² a (0 for |a| beyond the range of cosh², not NaN).
template <class T>
T two_sech2(T a) {
  const T c = std::cosh(a);
  return T(2) / (c * c);
}
}  // namespace detail

/// Per-(token, head) temperature parameters produced by AdaptiveTemperature::forward.
template <class T>
struct TemperatureOutput {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Matrix beta;   ///< [tokens, heads], ≥ 0
  Matrix gamma;  ///< [tokens, heads], in (−2, 2)
};

/// Gradients of AdaptiveTemperature::backward.
template <class T>
struct TemperatureGrad {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  Matrix dw_beta;   ///< [heads, d_model]
  Vector db_beta;   ///< [heads]
  Matrix dw_gamma;  ///< [heads, d_model]
  Vector db_gamma;  ///< [heads]
  Matrix dx;        ///< [tokens, d_model]
};

/// The learnable, input-dependent ASEntmax temperature of one attention layer:
///   β[t, h] = softplus(w_β[h] · x[t] + b_β[h]),  γ[t, h] = 2 · tanh(w_γ[h] · x[t] + b_γ[h]),
/// with δ = 1 fixed; s = δ + β · log(npos)^γ is formed by ASEntmax (asentmax.hpp).
/// x is [tokens, d_model] (any Eigen matrix expression, either storage order); for attention
/// over [batch, heads, N, ·] tokens are ordered t = b · N + i. tokens_to_rows / rows_to_tokens
/// convert [tokens, heads] to and from the flat [batch, heads, N] row order ASEntmax reads.
/// A model with w_β = w_γ = 0 is the non-adaptive (per-head) variant with β = softplus(b_β),
/// γ = 2 tanh(b_γ).
///
/// Numerics: GEMMs in T (Eigen); softplus, sigmoid and sech² in T, stable for large |a|
/// (softplus(a) = a + log1p(e^−a) for a > 0). Non-finite inputs propagate (not checked).
template <class T>
class AdaptiveTemperature {
  static_assert(detail::is_supported_scalar_v<T>, "entmax::AdaptiveTemperature: T must be float or double");

 public:
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  Matrix w_beta;   ///< [heads, d_model]
  Vector b_beta;   ///< [heads]
  Matrix w_gamma;  ///< [heads, d_model]
  Vector b_gamma;  ///< [heads]
  T delta = T(1);  ///< fixed offset of the scale

  /// Zero weights and biases: β = log 2, γ = 0 for every token (s = 1 + log 2).
  AdaptiveTemperature(std::size_t heads, std::size_t d_model)
      : w_beta(Matrix::Zero(index(heads), index(d_model))),
        b_beta(Vector::Zero(index(heads))),
        w_gamma(Matrix::Zero(index(heads), index(d_model))),
        b_gamma(Vector::Zero(index(heads))) {}

  std::size_t heads() const { return static_cast<std::size_t>(w_beta.rows()); }
  std::size_t d_model() const { return static_cast<std::size_t>(w_beta.cols()); }

  /// β and γ for every token of x [tokens, d_model]. Throws std::invalid_argument if x.cols() !=
  /// d_model or the parameter shapes disagree.
  template <class Derived>
  TemperatureOutput<T> forward(const Eigen::MatrixBase<Derived>& x) const {
    static_assert(std::is_same_v<typename Derived::Scalar, T>,
                  "entmax::AdaptiveTemperature::forward: x must have the scalar type T");
    check_shapes("entmax::AdaptiveTemperature::forward", x.cols());
    TemperatureOutput<T> out;
    out.beta.noalias() = x * w_beta.transpose();
    out.gamma.noalias() = x * w_gamma.transpose();
    out.beta.rowwise() += b_beta.transpose();
    out.gamma.rowwise() += b_gamma.transpose();
    out.beta = out.beta.unaryExpr([](T a) { return detail::softplus(a); });
    out.gamma = out.gamma.unaryExpr([](T a) { return T(2) * std::tanh(a); });
    return out;
  }

  /// Gradients of L w.r.t. w_β, b_β, w_γ, b_γ and x, given x and dL/dβ, dL/dγ [tokens, heads]
  /// (e.g. from ASEntmax's per-row sinks converted with rows_to_tokens). The pre-activations are
  /// recomputed from x (one GEMM each), which keeps sech² accurate where γ saturates.
  /// Throws std::invalid_argument on shape mismatch.
  template <class DX, class DB, class DG>
  TemperatureGrad<T> backward(const Eigen::MatrixBase<DX>& x, const Eigen::MatrixBase<DB>& dbeta,
                              const Eigen::MatrixBase<DG>& dgamma) const {
    constexpr const char* fn = "entmax::AdaptiveTemperature::backward";
    check_shapes(fn, x.cols());
    if (dbeta.rows() != x.rows() || dgamma.rows() != x.rows() || dbeta.cols() != w_beta.rows() ||
        dgamma.cols() != w_beta.rows()) {
      detail::raise(ErrorKind::invalid_argument,
                    detail::message(fn, ": dbeta and dgamma must be [tokens, heads] = [", x.rows(), ", ",
                                    w_beta.rows(), "] (got [", dbeta.rows(), ", ", dbeta.cols(), "] and [",
                                    dgamma.rows(), ", ", dgamma.cols(), "])"));
    }
    Matrix da_beta = x * w_beta.transpose();
    Matrix da_gamma = x * w_gamma.transpose();
    da_beta.rowwise() += b_beta.transpose();
    da_gamma.rowwise() += b_gamma.transpose();
    da_beta = da_beta.unaryExpr([](T a) { return detail::sigmoid(a); }).cwiseProduct(dbeta);
    da_gamma = da_gamma.unaryExpr([](T a) { return detail::two_sech2(a); }).cwiseProduct(dgamma);
    TemperatureGrad<T> g;
    g.dw_beta.noalias() = da_beta.transpose() * x;
    g.dw_gamma.noalias() = da_gamma.transpose() * x;
    g.db_beta = da_beta.colwise().sum().transpose();
    g.db_gamma = da_gamma.colwise().sum().transpose();
    g.dx.noalias() = da_beta * w_beta;
    g.dx.noalias() += da_gamma * w_gamma;
    return g;
  }

 private:
  static Eigen::Index index(std::size_t v) { return static_cast<Eigen::Index>(v); }

  void check_shapes(const char* fn, Eigen::Index x_cols) const {
    if (w_gamma.rows() != w_beta.rows() || w_gamma.cols() != w_beta.cols() ||
        b_beta.size() != w_beta.rows() || b_gamma.size() != w_beta.rows()) {
      detail::raise(ErrorKind::invalid_argument,
                    detail::message(fn, ": parameter shapes disagree (w_beta [", w_beta.rows(), ", ",
                                    w_beta.cols(), "], w_gamma [", w_gamma.rows(), ", ", w_gamma.cols(),
                                    "], b_beta [", b_beta.size(), "], b_gamma [", b_gamma.size(), "])"));
    }
    if (x_cols != w_beta.cols()) {
      detail::raise(
          ErrorKind::invalid_argument,
          detail::message(fn, ": x must have d_model = ", w_beta.cols(), " columns (got ", x_cols, ")"));
    }
  }
};

/// Reorders per-(token, head) values m [batch · N, heads] (token t = b · N + i) into the flat
/// attention row order [batch, heads, N] that ASEntmax's per-row arrays use. Throws
/// std::invalid_argument unless m.rows() == batch · N.
template <class Derived>
std::vector<typename Derived::Scalar> tokens_to_rows(const Eigen::MatrixBase<Derived>& m, std::size_t batch,
                                                     std::size_t n) {
  if (static_cast<std::size_t>(m.rows()) != batch * n) {
    detail::raise(ErrorKind::invalid_argument,
                  detail::message("entmax::tokens_to_rows: m must have batch * N = ", batch * n,
                                  " rows (got ", m.rows(), ")"));
  }
  const std::size_t heads = static_cast<std::size_t>(m.cols());
  std::vector<typename Derived::Scalar> out(batch * heads * n);
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < n; ++i)
        out[(b * heads + h) * n + i] = m(static_cast<Eigen::Index>(b * n + i), static_cast<Eigen::Index>(h));
  return out;
}

/// Inverse of tokens_to_rows: rows[(b · heads + h) · N + i] → m [batch · N, heads] (row-major).
/// `rows` must hold batch · heads · N values.
template <class T>
Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows_to_tokens(const T* rows,
                                                                                 std::size_t batch,
                                                                                 std::size_t heads,
                                                                                 std::size_t n) {
  Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> m(static_cast<Eigen::Index>(batch * n),
                                                                      static_cast<Eigen::Index>(heads));
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < n; ++i)
        m(static_cast<Eigen::Index>(b * n + i), static_cast<Eigen::Index>(h)) = rows[(b * heads + h) * n + i];
  return m;
}

}  // namespace entmax
