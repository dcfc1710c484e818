// The attention operator: O = normalize(scale · Q Kᵀ + bias, mask) · V for any Normalizer
// policy, and its backward, over row-major rank-4 Eigen tensors [batch, heads, length, head_dim].
#pragma once

#include <entmax/config.hpp>
#include <entmax/detail/attention_core.hpp>
#include <entmax/detail/policy_rows.hpp>
#include <entmax/error.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/row_stats.hpp>

#include <unsupported/Eigen/CXX11/Tensor>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace entmax {

/// A non-owning, read-only view of a row-major tensor of rank `Rank` (data + dimensions). Make
/// one with entmax::view(tensor) from an Eigen Tensor or TensorMap; an empty view means "absent".
template <class U, int Rank>
struct TensorView {
  const U* data = nullptr;
  std::array<Eigen::Index, static_cast<std::size_t>(Rank)> dims{};
  explicit operator bool() const { return data != nullptr; }
};

/// View of a row-major Eigen Tensor or TensorMap (its memory must outlive the view's uses).
template <class X>
auto view(const X& x) {
  static_assert(static_cast<int>(X::Layout) == static_cast<int>(Eigen::RowMajor),
                "entmax::view: the tensor must be row-major");
  using U = std::remove_const_t<typename X::Scalar>;
  TensorView<U, static_cast<int>(X::NumIndices)> out;
  out.data = x.data();
  for (std::size_t d = 0; d < static_cast<std::size_t>(X::NumIndices); ++d) out.dims[d] = x.dimension(d);
  return out;
}

/// Options of entmax::attention and entmax::attention_backward. Scores of query i against key j
/// of batch b and head h are
///   z_ij = row_scale[b,h,i] · (scale · q_i·k_j + bias[b,h,i,j] + alibi[h] · (j − i − (Nk − Nq)))
/// with masked keys removed (p = 0 exactly, zero gradient, their K/V rows never read).
template <class T>
struct AttentionOptions {
  /// Query i of Nq sees keys j <= i + Nk − Nq (the last query aligned with the last key, as with
  /// a KV cache). Queries with no visible key give zero output rows and zero gradients.
  bool causal = false;
  /// Multiplier of q·k; default 1/sqrt(head_dim). Must be finite and > 0.
  std::optional<T> scale;
  /// Per batch entry, the number of valid keys (keys j >= key_lengths[b] are padding). Empty: all.
  /// Causal alignment uses the tensor length Nk, not these lengths.
  std::vector<std::int64_t> key_lengths;
  /// Boolean mask [1 or B, 1 or H, Nq, Nk], true = the query may see the key. Broadcast over batch
  /// and heads when that extent is 1.
  TensorView<bool, 4> mask;
  /// Additive bias [1 or B, 1 or H, Nq, Nk] (−inf entries act as a mask for p, but their K/V rows
  /// are read). Broadcast like mask.
  TensorView<T, 4> bias;
  /// ALiBi slopes, one per query head (empty: none): adds slope · (j − i − (Nk − Nq)).
  std::vector<T> alibi_slopes;
  /// Per-row multiplier [B, H, Nq] of the scores before the normalizer (a temperature): its
  /// gradient is returned by attention_backward in drow_scale. Values must be finite and > 0
  /// (std::domain_error naming the first bad entry otherwise).
  TensorView<T, 3> row_scale;
  /// Worker threads (0: std::thread::hardware_concurrency()). Results are bitwise identical for
  /// any value.
  unsigned threads = 1;
  /// Query rows per block (0: automatic). Memory beyond inputs and outputs is
  /// O(block_rows × Nk) per worker. Results may differ in the last bits between block sizes.
  std::size_t block_rows = 0;
};

/// Gradients returned by attention_backward.
template <class T>
struct AttentionGradients {
  Eigen::Tensor<T, 4, Eigen::RowMajor> dq;  ///< [B, H, Nq, D]
  Eigen::Tensor<T, 4, Eigen::RowMajor> dk;  ///< [B, KH, Nk, D]
  Eigen::Tensor<T, 4, Eigen::RowMajor> dv;  ///< [B, KH, Nk, D]
  /// [B, H, Nq] when options.row_scale is set, else empty (all extents 0).
  Eigen::Tensor<T, 3, Eigen::RowMajor> drow_scale;
};

namespace detail {

template <class X>
struct attention_tensor {
  using scalar = std::remove_const_t<typename X::Scalar>;
  static constexpr bool rank4 = static_cast<int>(X::NumIndices) == 4;
  static constexpr bool row_major = static_cast<int>(X::Layout) == static_cast<int>(Eigen::RowMajor);
};

template <std::size_t R>
std::string shape_str(const std::array<Eigen::Index, R>& d) {
  std::string s = "[";
  for (std::size_t i = 0; i < R; ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

template <class X>
std::array<Eigen::Index, 4> dims4(const X& x) {
  return {x.dimension(0), x.dimension(1), x.dimension(2), x.dimension(3)};
}

/// Validates shapes and options (O(1) plus O(B + H) for the per-batch / per-head arrays and
/// O(B·H·Nq) for the row scales) and
/// fills the raw problem description. Throws before anything is written.
template <class T>
AttnProblem<T> make_problem(const char* fn, const std::array<Eigen::Index, 4>& qd,
                            const std::array<Eigen::Index, 4>& kd, const std::array<Eigen::Index, 4>& vd,
                            const AttentionOptions<T>& opt) {
  const Index B = qd[0], H = qd[1], Nq = qd[2], D = qd[3];
  const Index KH = kd[1], Nk = kd[2];
  auto bad = [&](const std::string& what) { raise(ErrorKind::invalid_argument, message(fn, ": ", what)); };
  if (kd[0] != B || kd[3] != D || (H > 0 && (KH <= 0 || H % KH != 0)))
    bad(message("k has shape ", shape_str(kd), " but q has shape ", shape_str(qd), "; expected [", B,
                ", kv_heads, Nk, ", D, "] with kv_heads dividing ", H));
  if (vd != kd)
    bad(message("v has shape ", shape_str(vd), " but k has shape ", shape_str(kd), "; they must match"));
  AttnProblem<T> pr;
  pr.B = B, pr.H = H, pr.KH = KH, pr.Nq = Nq, pr.Nk = Nk, pr.D = D;
  const T scale = opt.scale ? *opt.scale : (D > 0 ? T(1) / std::sqrt(static_cast<T>(D)) : T(1));
  check_positive(fn, "scale", scale);
  pr.scale = scale;
  pr.causal = opt.causal;
  if (!opt.key_lengths.empty()) {
    if (static_cast<Index>(opt.key_lengths.size()) != B)
      bad(message("key_lengths has ", opt.key_lengths.size(), " entries but the batch size is ", B));
    for (std::size_t b = 0; b < opt.key_lengths.size(); ++b)
      if (opt.key_lengths[b] < 0 || opt.key_lengths[b] > Nk)
        bad(message("key_lengths[", b, "] = ", opt.key_lengths[b], " is outside [0, ", Nk, "]"));
    pr.key_len = opt.key_lengths.data();
  }
  auto broadcast = [&](const char* name, const std::array<Eigen::Index, 4>& d, Index& sb, Index& sh) {
    if (!((d[0] == 1 || d[0] == B) && (d[1] == 1 || d[1] == H) && d[2] == Nq && d[3] == Nk))
      bad(message(name, " has shape ", shape_str(d), " but must be [1 or ", B, ", 1 or ", H, ", ", Nq, ", ",
                  Nk, "] for q ", shape_str(qd), " and k ", shape_str(kd)));
    sh = d[1] == 1 ? 0 : Nq * Nk;
    sb = d[0] == 1 ? 0 : d[1] * Nq * Nk;
  };
  if (opt.mask) {
    broadcast("mask", opt.mask.dims, pr.mask_sb, pr.mask_sh);
    pr.mask = opt.mask.data;
  }
  if (opt.bias) {
    broadcast("bias", opt.bias.dims, pr.bias_sb, pr.bias_sh);
    pr.bias = opt.bias.data;
  }
  if (!opt.alibi_slopes.empty()) {
    if (static_cast<Index>(opt.alibi_slopes.size()) != H)
      bad(message("alibi_slopes has ", opt.alibi_slopes.size(), " entries but q has ", H, " heads"));
    for (T s : opt.alibi_slopes) check_finite(fn, "alibi slope", s);
    pr.alibi = opt.alibi_slopes.data();
  }
  if (opt.row_scale) {
    const auto& d = opt.row_scale.dims;
    if (d[0] != B || d[1] != H || d[2] != Nq)
      bad(message("row_scale has shape ", shape_str(d), " but must be [", B, ", ", H, ", ", Nq, "] for q ",
                  shape_str(qd)));
    const T* rs = opt.row_scale.data;
    for (Index r = 0; r < B * H * Nq; ++r) {
      if (!(std::isfinite(rs[r]) && rs[r] > T(0))) {
        raise(ErrorKind::domain_error, message(fn, ": row_scale[", r / (H * Nq), ", ", r / Nq % H, ", ",
                                               r % Nq, "] must be finite and > 0 (got ", rs[r], ")"));
      }
    }
    pr.row_scale = rs;
  }
  pr.threads = opt.threads;
  pr.block_rows = static_cast<Index>(opt.block_rows);
  return pr;
}

template <class N, class T>
constexpr bool attention_policy_ok() {
  if constexpr (is_row_scaled_v<N>) {
    return is_normalizer_v<std::decay_t<decltype(std::declval<const N&>().base())>, T>;
  } else {
    return is_normalizer_v<N, T>;
  }
}

template <class Q, class K, class V>
void static_checks_qkv() {
  using T = typename attention_tensor<Q>::scalar;
  static_assert(is_supported_scalar_v<T>, "entmax::attention: T must be float or double");
  static_assert(attention_tensor<Q>::rank4 && attention_tensor<K>::rank4 && attention_tensor<V>::rank4,
                "entmax::attention: q, k and v must be rank-4 tensors [batch, heads, length, head_dim]");
  static_assert(
      attention_tensor<Q>::row_major && attention_tensor<K>::row_major && attention_tensor<V>::row_major,
      "entmax::attention: q, k and v must be row-major (Eigen::RowMajor)");
  static_assert(std::is_same_v<T, typename attention_tensor<K>::scalar> &&
                    std::is_same_v<T, typename attention_tensor<V>::scalar>,
                "entmax::attention: q, k and v must have the same scalar type");
}

}  // namespace detail

/// Attention forward: O[b,h,i] = Σ_j p_ij V[b, h / (H/KH), j] with p_i = normalizer(z_i) over the
/// visible keys (see AttentionOptions for z). Writes the per-row support sizes (number of
/// non-zero p_ij) into `support` [B, H, Nq] when it is not null, and each row's RowStats into
/// `row_stats` (B·H·Nq entries, row (b·H + h)·Nq + i; resized) when it is not null: passed to
/// attention_backward, they let it rebuild p in one pass per row instead of normalizing again.
///
/// @param q  [B, H, Nq, D] row-major Tensor or TensorMap; k, v [B, KH, Nk, D] with KH | H.
/// @param normalizer  any Normalizer policy (Softmax, Sparsemax, Entmax15, EntmaxBisect, …) or a
///        row-scaled one (ASEntmax, ScalableSoftmax, PerRowScale; row index (b·H + h)·Nq + i,
///        npos = unmasked visible keys + 1).
/// Throws std::invalid_argument naming the tensors and shapes on a mismatch, std::domain_error
/// for a non-finite or non-positive scale or non-finite ALiBi slopes; nothing is written then.
/// Numerics: scores and products in T (Eigen GEMM), normalizers as documented by each policy.
/// Masked keys (causal, key_lengths, mask) get p = 0 and their K/V rows are not read; a query
/// with no visible key gets a zero row. NaN/+inf in a visible score gives a NaN row.
/// Thread safety: no global state; concurrent calls are safe; each call spawns at most
/// options.threads − 1 std::threads and joins them before returning.
template <class Q, class K, class V, class N>
Eigen::Tensor<typename detail::attention_tensor<Q>::scalar, 4, Eigen::RowMajor> attention(
    const Q& q, const K& k, const V& v, const N& normalizer,
    const AttentionOptions<typename detail::attention_tensor<Q>::scalar>& options,
    Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor>* support,
    std::vector<RowStats<typename detail::attention_tensor<Q>::scalar>>* row_stats = nullptr) {
  detail::static_checks_qkv<Q, K, V>();
  using T = typename detail::attention_tensor<Q>::scalar;
  static_assert(detail::attention_policy_ok<N, T>(),
                "entmax::attention: the normalizer must model entmax::Normalizer");
  detail::AttnProblem<T> pr = detail::make_problem<T>("entmax::attention", detail::dims4(q), detail::dims4(k),
                                                      detail::dims4(v), options);
  detail::check_policy_rows("entmax::attention", normalizer, static_cast<std::size_t>(pr.B * pr.H * pr.Nq));
  pr.q = q.data(), pr.k = k.data(), pr.v = v.data();
  Eigen::Tensor<T, 4, Eigen::RowMajor> out(pr.B, pr.H, pr.Nq, pr.D);
  if (support) support->resize(pr.B, pr.H, pr.Nq);
  if (row_stats) row_stats->resize(static_cast<std::size_t>(pr.B * pr.H * pr.Nq));
  detail::run_forward(
      pr, normalizer, out.data(),
      detail::RowRecords<T>{support ? support->data() : nullptr, row_stats ? row_stats->data() : nullptr});
  return out;
}

/// Attention forward without support output; see the overload above.
template <class Q, class K, class V, class N>
Eigen::Tensor<typename detail::attention_tensor<Q>::scalar, 4, Eigen::RowMajor> attention(
    const Q& q, const K& k, const V& v, const N& normalizer,
    const AttentionOptions<typename detail::attention_tensor<Q>::scalar>& options = {}) {
  return attention(q, k, v, normalizer, options, nullptr);
}

/// Attention backward: gradients of ⟨dout, attention(q, k, v, normalizer, options)⟩ with respect
/// to q, k, v (and the per-row scale when options.row_scale is set). Row-scaled policies receive
/// dL/ds of every row through their scale_backward sinks. Scores are recomputed block by block
/// (memory O(block × Nk) beyond inputs and outputs). Nothing of the forward is needed; given the
/// forward's `row_stats` (same inputs, normalizer and options; B·H·Nq entries, else
/// std::invalid_argument), p is rebuilt from them in one pass per row instead of normalized
/// again (the same p up to the last bits of the recomputed scores). dout must have q's shape. Errors, masking
/// and thread safety as for attention(); masked keys get exactly zero dk and dv rows, fully masked queries
/// zero dq rows.
template <class Q, class K, class V, class DO, class N>
AttentionGradients<typename detail::attention_tensor<Q>::scalar> attention_backward(
    const Q& q, const K& k, const V& v, const DO& dout, const N& normalizer,
    const AttentionOptions<typename detail::attention_tensor<Q>::scalar>& options = {},
    const std::vector<RowStats<typename detail::attention_tensor<Q>::scalar>>* row_stats = nullptr) {
  detail::static_checks_qkv<Q, K, V>();
  using T = typename detail::attention_tensor<Q>::scalar;
  static_assert(detail::attention_tensor<DO>::rank4 && detail::attention_tensor<DO>::row_major &&
                    std::is_same_v<T, typename detail::attention_tensor<DO>::scalar>,
                "entmax::attention_backward: dout must be a row-major rank-4 tensor of q's scalar type");
  static_assert(detail::attention_policy_ok<N, T>(),
                "entmax::attention_backward: the normalizer must model entmax::Normalizer");
  const char* fn = "entmax::attention_backward";
  detail::AttnProblem<T> pr =
      detail::make_problem<T>(fn, detail::dims4(q), detail::dims4(k), detail::dims4(v), options);
  if (detail::dims4(dout) != detail::dims4(q))
    detail::raise(
        ErrorKind::invalid_argument,
        detail::message(fn, ": dout has shape ", detail::shape_str(detail::dims4(dout)), " but q has shape ",
                        detail::shape_str(detail::dims4(q)), "; they must match"));
  detail::check_policy_rows(fn, normalizer, static_cast<std::size_t>(pr.B * pr.H * pr.Nq));
  if (row_stats) {
    if (row_stats->size() != static_cast<std::size_t>(pr.B * pr.H * pr.Nq))
      detail::raise(
          ErrorKind::invalid_argument,
          detail::message(fn, ": row_stats has ", row_stats->size(), " entries but q ",
                          detail::shape_str(detail::dims4(q)), " has ", pr.B * pr.H * pr.Nq, " rows"));
    pr.saved_stats = row_stats->data();
  }
  pr.q = q.data(), pr.k = k.data(), pr.v = v.data();
  AttentionGradients<T> g;
  g.dq.resize(pr.B, pr.H, pr.Nq, pr.D);
  g.dk.resize(pr.B, pr.KH, pr.Nk, pr.D);
  g.dv.resize(pr.B, pr.KH, pr.Nk, pr.D);
  g.dk.setZero();
  g.dv.setZero();
  if (options.row_scale) {
    g.drow_scale.resize(pr.B, pr.H, pr.Nq);
    g.drow_scale.setZero();
  }
  detail::BackwardOut<T> res{g.dq.data(), g.dk.data(), g.dv.data(),
                             options.row_scale ? g.drow_scale.data() : nullptr};
  detail::run_backward(pr, normalizer, dout.data(), res);
  return g;
}

}  // namespace entmax
