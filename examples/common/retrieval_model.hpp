// A one-layer attention model for key-value retrieval, with its forward and backward pass written
// out by hand so that every gradient can be checked against finite differences.
//
//   item token  x_j = E_key[k_j] + E_value[v_j]          j = 0 .. n-1
//   query token x_n = E_key[q] + e_query
//   per head h: q_h = s_h * W_q,h x_n,  K_h = W_k,h X,  V_h = W_v,h X      (keys: all n+1 tokens)
//               o_h = normalizer(q_h K_h^T / sqrt(d_head)) V_h
//   y = x_n + W_o [o_1; ...; o_H],  logits = W_u y + b_u,  loss = cross-entropy(logits, value)
//
// The variants differ only in the normalizer and the query scale s_h (n+1 visible keys, so the
// length term is log(n + 2), as for causal position i = n in Vasylenko et al.):
//   softmax           softmax,    s = 1
//   scalable_softmax  softmax,    s = beta_h log(n + 2), beta_h learned per head (init 1)
//   entmax15          1.5-entmax, s = 1
//   asentmax          1.5-entmax, s = 1 + beta (log(n + 2))^gamma with beta = softplus(w_b.x_n + b_b),
//                     gamma = 2 tanh(w_g.x_n + b_g) per head, projections initialised at zero.
//
// Two interchangeable implementations of the attention step (ModelConfig::path):
//   library  entmax::attention / attention_backward with the policies entmax::Softmax,
//            entmax::ScalableSoftmax (per head), entmax::Entmax15 and entmax::ASEntmax (per row,
//            beta and gamma from entmax::AdaptiveTemperature); this is what trains.
//   manual   the query scaled by hand (q <- s q), rowwise_attention over the plain row
//            normalizers and the chain rule through softplus / tanh written out here.
// Both are checked against finite differences and against each other.
#pragma once

#include "common/attention_step.hpp"
#include "common/kv_task.hpp"

#include <entmax/asentmax.hpp>
#include <entmax/attention.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/scalable_softmax.hpp>
#include <entmax/temperature.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace example {

enum class Variant { softmax, scalable_softmax, entmax15, asentmax };

inline const char* variant_name(Variant v) {
  switch (v) {
    case Variant::softmax:
      return "softmax";
    case Variant::scalable_softmax:
      return "ssmax";
    case Variant::entmax15:
      return "entmax15";
    case Variant::asentmax:
      return "asentmax";
  }
  return "?";
}

inline bool parse_variant(const std::string& s, Variant& v) {
  for (Variant c : {Variant::softmax, Variant::scalable_softmax, Variant::entmax15, Variant::asentmax})
    if (s == variant_name(c)) {
      v = c;
      return true;
    }
  return false;
}

/// Calls f(entmax::Softmax{}) or f(entmax::Entmax15{}) according to the variant.
template <class F>
decltype(auto) with_normalizer(Variant v, F&& f) {
  if (v == Variant::entmax15 || v == Variant::asentmax) return f(entmax::Entmax15{});
  return f(entmax::Softmax{});
}

enum class AttentionPath { library, manual };

struct ModelConfig {
  int num_keys = 64;
  int num_values = 32;
  int d_model = 32;
  int heads = 2;
  int head_dim = 16;
  Variant variant = Variant::softmax;
  AttentionPath path = AttentionPath::library;
};

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// The parameters (or, with the same shapes, their gradients).
template <class T>
struct Params {
  Mat<T> key_emb, value_emb, query_emb;  // K x D, V x D, 1 x D
  Mat<T> wq, wk, wv;                     // HDh x D
  Mat<T> wo;                             // D x HDh
  Mat<T> wu, bu;                         // V x D, 1 x V
  Mat<T> ss_beta;                        // 1 x H      scalable softmax
  Mat<T> as_wb, as_bb, as_wg, as_bg;     // H x D, 1 x H, H x D, 1 x H   ASEntmax

  static Params zeros(const ModelConfig& c) {
    const Eigen::Index D = c.d_model, HD = c.heads * c.head_dim, H = c.heads;
    Params p;
    p.key_emb = Mat<T>::Zero(c.num_keys, D);
    p.value_emb = Mat<T>::Zero(c.num_values, D);
    p.query_emb = Mat<T>::Zero(1, D);
    p.wq = Mat<T>::Zero(HD, D);
    p.wk = Mat<T>::Zero(HD, D);
    p.wv = Mat<T>::Zero(HD, D);
    p.wo = Mat<T>::Zero(D, HD);
    p.wu = Mat<T>::Zero(c.num_values, D);
    p.bu = Mat<T>::Zero(1, c.num_values);
    p.ss_beta = Mat<T>::Zero(1, H);
    p.as_wb = Mat<T>::Zero(H, D);
    p.as_bb = Mat<T>::Zero(1, H);
    p.as_wg = Mat<T>::Zero(H, D);
    p.as_bg = Mat<T>::Zero(1, H);
    return p;
  }

  /// The blocks the variant trains, by name.
  std::vector<std::pair<std::string, Mat<T>*>> named(Variant v) {
    std::vector<std::pair<std::string, Mat<T>*>> out{{"key_emb", &key_emb},
                                                     {"value_emb", &value_emb},
                                                     {"query_emb", &query_emb},
                                                     {"wq", &wq},
                                                     {"wk", &wk},
                                                     {"wv", &wv},
                                                     {"wo", &wo},
                                                     {"wu", &wu},
                                                     {"bu", &bu}};
    if (v == Variant::scalable_softmax) out.push_back({"ss_beta", &ss_beta});
    if (v == Variant::asentmax) {
      out.push_back({"as_wb", &as_wb});
      out.push_back({"as_bb", &as_bb});
      out.push_back({"as_wg", &as_wg});
      out.push_back({"as_bg", &as_bg});
    }
    return out;
  }
};

/// Everything the backward pass needs from the forward pass of one batch.
template <class T>
struct Cache {
  Eigen::Index B = 0, N = 0;   // batch, tokens per sequence (items + 1)
  T log_n = 0;                 // log(N + 1)
  Mat<T> X, Xq, Q;             // (B N) x D, B x D, B x HDh (unscaled queries)
  Mat<T> S, A, C;              // B x H: scale, and ASEntmax pre-activations of beta and gamma
  Mat<T> beta, gamma;          // B x H: ASEntmax beta and gamma (library path)
  Tensor4<T> q4, k4, v4;       // [B,H,1,Dh] queries (unscaled), [B,H,N,Dh] keys and values
  Tensor4<T> qs4;              // [B,H,1,Dh] scaled queries (manual path)
  Mat<T> O, Y, logits, probs;  // B x HDh, B x D, B x V, B x V
};

inline double softplus(double a) { return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a)); }
inline double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }

template <class T>
class RetrievalModel {
 public:
  ModelConfig cfg;
  Params<T> w, g;

  explicit RetrievalModel(const ModelConfig& c) : cfg(c), w(Params<T>::zeros(c)), g(Params<T>::zeros(c)) {}

  /// Gaussian initialisation (fan-in scaled); beta/gamma projections start at zero, SSMax beta at 1.
  void init(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n01(0.0, 1.0);
    auto fill = [&](Mat<T>& m, double sd) {
      for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(sd * n01(rng));
    };
    const double D = cfg.d_model, HD = cfg.heads * cfg.head_dim;
    fill(w.key_emb, 1.0);
    fill(w.value_emb, 1.0);
    fill(w.query_emb, 1.0);
    fill(w.wq, 1.0 / std::sqrt(D));
    fill(w.wk, 1.0 / std::sqrt(D));
    fill(w.wv, 1.0 / std::sqrt(D));
    fill(w.wo, 1.0 / std::sqrt(HD));
    fill(w.wu, 1.0 / std::sqrt(D));
    w.bu.setZero();
    w.ss_beta.setOnes();
    w.as_wb.setZero();
    w.as_bb.setZero();
    w.as_wg.setZero();
    w.as_bg.setZero();
  }

  /// Forward pass over a batch; returns the mean cross-entropy.
  T forward(const KvBatch& b, Cache<T>& c) const {
    const Eigen::Index B = static_cast<Eigen::Index>(b.batch), n = static_cast<Eigen::Index>(b.items);
    const Eigen::Index N = n + 1, D = cfg.d_model, H = cfg.heads, Dh = cfg.head_dim, V = cfg.num_values;
    c.B = B;
    c.N = N;
    c.log_n = static_cast<T>(std::log(static_cast<double>(N + 1)));
    c.X.resize(B * N, D);
    c.Xq.resize(B, D);
    for (Eigen::Index s = 0; s < B; ++s) {
      for (Eigen::Index j = 0; j < n; ++j) {
        const auto idx = static_cast<std::size_t>(s * n + j);
        c.X.row(s * N + j) = w.key_emb.row(b.keys[idx]) + w.value_emb.row(b.values[idx]);
      }
      c.X.row(s * N + n) = w.key_emb.row(b.query[static_cast<std::size_t>(s)]) + w.query_emb;
      c.Xq.row(s) = c.X.row(s * N + n);
    }
    c.Q.noalias() = c.Xq * w.wq.transpose();
    const Mat<T> Kf = c.X * w.wk.transpose();
    const Mat<T> Vf = c.X * w.wv.transpose();

    c.q4 = Tensor4<T>(B, H, 1, Dh);
    c.k4 = Tensor4<T>(B, H, N, Dh);
    c.v4 = Tensor4<T>(B, H, N, Dh);
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h) {
        for (Eigen::Index d = 0; d < Dh; ++d) c.q4(s, h, 0, d) = c.Q(s, h * Dh + d);
        for (Eigen::Index j = 0; j < N; ++j)
          for (Eigen::Index d = 0; d < Dh; ++d) {
            c.k4(s, h, j, d) = Kf(s * N + j, h * Dh + d);
            c.v4(s, h, j, d) = Vf(s * N + j, h * Dh + d);
          }
      }
    const Tensor4<T> o4 = cfg.path == AttentionPath::library ? library_forward(c) : manual_forward(c);
    c.O.resize(B, H * Dh);
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h)
        for (Eigen::Index d = 0; d < Dh; ++d) c.O(s, h * Dh + d) = o4(s, h, 0, d);

    c.Y = c.Xq + c.O * w.wo.transpose();
    c.logits = c.Y * w.wu.transpose() + w.bu.replicate(B, 1);
    c.probs.resize(B, V);
    double loss = 0;
    for (Eigen::Index s = 0; s < B; ++s) {
      const T m = c.logits.row(s).maxCoeff();
      c.probs.row(s) = (c.logits.row(s).array() - m).exp().matrix();
      const T sum = c.probs.row(s).sum();
      c.probs.row(s) /= sum;
      loss += static_cast<double>(std::log(sum) + m - c.logits(s, b.target[static_cast<std::size_t>(s)]));
    }
    return static_cast<T>(loss / static_cast<double>(B));
  }

  /// Backward pass of the mean cross-entropy; overwrites g.
  void backward(const KvBatch& b, const Cache<T>& c) {
    const Eigen::Index B = c.B, N = c.N, n = N - 1, H = cfg.heads, Dh = cfg.head_dim;
    g = Params<T>::zeros(cfg);
    Mat<T> dlogits = c.probs;
    for (Eigen::Index s = 0; s < B; ++s) dlogits(s, b.target[static_cast<std::size_t>(s)]) -= T(1);
    dlogits /= static_cast<T>(B);
    g.wu.noalias() = dlogits.transpose() * c.Y;
    g.bu = dlogits.colwise().sum();
    const Mat<T> dY = dlogits * w.wu;
    g.wo.noalias() = dY.transpose() * c.O;
    const Mat<T> dO = dY * w.wo;
    Mat<T> dXq = dY;

    Tensor4<T> do4(B, H, 1, Dh);
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h)
        for (Eigen::Index d = 0; d < Dh; ++d) do4(s, h, 0, d) = dO(s, h * Dh + d);
    // dq4: gradient w.r.t. the unscaled queries; the scale's own gradients go into g and dXq.
    const Tensor4<T> dq4 =
        cfg.path == AttentionPath::library ? library_backward(c, do4, dXq) : manual_backward(c, do4, dXq);

    Mat<T> dQ(B, H * Dh), dKf(B * N, H * Dh), dVf(B * N, H * Dh);
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h) {
        for (Eigen::Index d = 0; d < Dh; ++d) dQ(s, h * Dh + d) = dq4(s, h, 0, d);
        for (Eigen::Index j = 0; j < N; ++j)
          for (Eigen::Index d = 0; d < Dh; ++d) {
            dKf(s * N + j, h * Dh + d) = dk4_(s, h, j, d);
            dVf(s * N + j, h * Dh + d) = dv4_(s, h, j, d);
          }
      }
    g.wq.noalias() = dQ.transpose() * c.Xq;
    dXq.noalias() += dQ * w.wq;
    g.wk.noalias() = dKf.transpose() * c.X;
    g.wv.noalias() = dVf.transpose() * c.X;
    Mat<T> dX = dKf * w.wk + dVf * w.wv;

    for (Eigen::Index s = 0; s < B; ++s) {
      dX.row(s * N + n) += dXq.row(s);
      for (Eigen::Index j = 0; j < n; ++j) {
        const auto idx = static_cast<std::size_t>(s * n + j);
        g.key_emb.row(b.keys[idx]) += dX.row(s * N + j);
        g.value_emb.row(b.values[idx]) += dX.row(s * N + j);
      }
      g.key_emb.row(b.query[static_cast<std::size_t>(s)]) += dX.row(s * N + n);
      g.query_emb += dX.row(s * N + n);
    }
  }

  /// Forward + backward; returns the loss.
  T loss_and_grad(const KvBatch& b) {
    Cache<T> c;
    const T loss = forward(b, c);
    backward(b, c);
    return loss;
  }

  /// Attention weight each head puts on the item holding the answer (from a forward cache),
  /// and the number of keys with non-zero weight; both maximised over heads.
  void target_attention(const KvBatch& b, const Cache<T>& c, std::vector<double>& mass,
                        std::vector<double>& support) const {
    const Eigen::Index B = c.B, N = c.N, H = cfg.heads, Dh = cfg.head_dim;
    const T scale = T(1) / std::sqrt(static_cast<T>(Dh));
    mass.assign(static_cast<std::size_t>(B), 0.0);
    support.assign(static_cast<std::size_t>(B), 0.0);
    std::vector<T> z(static_cast<std::size_t>(N)), p(z.size());
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h) {
        for (Eigen::Index j = 0; j < N; ++j) {
          T dot = 0;
          for (Eigen::Index d = 0; d < Dh; ++d) dot += c.q4(s, h, 0, d) * c.k4(s, h, j, d);
          z[static_cast<std::size_t>(j)] = c.S(s, h) * (scale * dot);
        }
        with_normalizer(cfg.variant, [&](auto norm) { norm.forward(z.data(), p.data(), z.size()); });
        std::size_t nz = 0;
        for (T x : p) nz += x > T(0) ? 1u : 0u;
        const auto si = static_cast<std::size_t>(s);
        mass[si] = std::max(mass[si], static_cast<double>(p[b.target_pos[si]]));
        support[si] = std::max(support[si], static_cast<double>(nz));
      }
  }

 private:
  Tensor4<T> dk4_, dv4_;  // key and value gradients of the last backward pass

  std::size_t npos(const Cache<T>& c) const { return static_cast<std::size_t>(c.N + 1); }

  entmax::AdaptiveTemperature<T> temperature() const {
    entmax::AdaptiveTemperature<T> t(static_cast<std::size_t>(cfg.heads),
                                     static_cast<std::size_t>(cfg.d_model));
    t.w_beta = w.as_wb;
    t.b_beta = w.as_bb.transpose();
    t.w_gamma = w.as_wg;
    t.b_gamma = w.as_bg.transpose();
    return t;
  }

  // Library path. Score rows are ordered (b H + h) Nq + i with Nq = 1, i.e. like a row-major B x H
  // matrix, which is how beta, gamma and the scale sinks are laid out.
  Tensor4<T> library_forward(Cache<T>& c) const {
    const Eigen::Index B = c.B, H = cfg.heads;
    const auto rows = static_cast<std::size_t>(B * H);
    c.S = Mat<T>::Ones(B, H);
    switch (cfg.variant) {
      case Variant::softmax:
        return entmax::attention(c.q4, c.k4, c.v4, entmax::Softmax{});
      case Variant::entmax15:
        return entmax::attention(c.q4, c.k4, c.v4, entmax::Entmax15{});
      case Variant::scalable_softmax: {
        const auto pol = entmax::ScalableSoftmax<T>::per_head(w.ss_beta.data(), static_cast<std::size_t>(H),
                                                              std::size_t{1});
        for (std::size_t r = 0; r < rows; ++r) c.S.data()[r] = pol.scale(r, npos(c));
        return entmax::attention(c.q4, c.k4, c.v4, pol);
      }
      case Variant::asentmax: {
        const entmax::TemperatureOutput<T> t = temperature().forward(c.Xq);
        c.beta = t.beta;
        c.gamma = t.gamma;
        const entmax::ASEntmax<T> pol(c.beta.data(), c.gamma.data(), rows);
        for (std::size_t r = 0; r < rows; ++r) c.S.data()[r] = pol.scale(r, npos(c));
        return entmax::attention(c.q4, c.k4, c.v4, pol);
      }
    }
    return {};
  }

  Tensor4<T> library_backward(const Cache<T>& c, const Tensor4<T>& do4, Mat<T>& dXq) {
    const Eigen::Index B = c.B, H = cfg.heads;
    const auto rows = static_cast<std::size_t>(B * H);
    entmax::AttentionGradients<T> ag;
    switch (cfg.variant) {
      case Variant::softmax:
        ag = entmax::attention_backward(c.q4, c.k4, c.v4, do4, entmax::Softmax{});
        break;
      case Variant::entmax15:
        ag = entmax::attention_backward(c.q4, c.k4, c.v4, do4, entmax::Entmax15{});
        break;
      case Variant::scalable_softmax: {
        auto pol = entmax::ScalableSoftmax<T>::per_head(w.ss_beta.data(), static_cast<std::size_t>(H),
                                                        std::size_t{1});
        std::vector<T> ds(rows);
        pol.set_gradient_sink(ds.data());
        ag = entmax::attention_backward(c.q4, c.k4, c.v4, do4, pol);
        entmax::sum_rows_per_head(ds.data(), rows, static_cast<std::size_t>(H), std::size_t{1},
                                  g.ss_beta.data());
        break;
      }
      case Variant::asentmax: {
        entmax::ASEntmax<T> pol(c.beta.data(), c.gamma.data(), rows);
        Mat<T> dbeta(B, H), dgamma(B, H);
        pol.set_gradient_sinks(dbeta.data(), dgamma.data());
        ag = entmax::attention_backward(c.q4, c.k4, c.v4, do4, pol);
        const entmax::TemperatureGrad<T> tg = temperature().backward(c.Xq, dbeta, dgamma);
        g.as_wb = tg.dw_beta;
        g.as_bb = tg.db_beta.transpose();
        g.as_wg = tg.dw_gamma;
        g.as_bg = tg.db_gamma.transpose();
        dXq += tg.dx;
        break;
      }
    }
    dk4_ = std::move(ag.dk);
    dv4_ = std::move(ag.dv);
    return std::move(ag.dq);
  }

  // Manual path: q <- s q by hand, then attention composed from the plain row normalizers.
  Tensor4<T> manual_forward(Cache<T>& c) const {
    const Eigen::Index B = c.B, H = cfg.heads, Dh = cfg.head_dim;
    c.S = Mat<T>::Ones(B, H);
    c.A = Mat<T>::Zero(B, H);
    c.C = Mat<T>::Zero(B, H);
    if (cfg.variant == Variant::scalable_softmax) {
      for (Eigen::Index s = 0; s < B; ++s) c.S.row(s) = w.ss_beta * c.log_n;
    } else if (cfg.variant == Variant::asentmax) {
      c.A = c.Xq * w.as_wb.transpose() + w.as_bb.replicate(B, 1);
      c.C = c.Xq * w.as_wg.transpose() + w.as_bg.replicate(B, 1);
      for (Eigen::Index s = 0; s < B; ++s)
        for (Eigen::Index h = 0; h < H; ++h) {
          const double beta = softplus(static_cast<double>(c.A(s, h)));
          const double gamma = 2.0 * std::tanh(static_cast<double>(c.C(s, h)));
          c.S(s, h) = static_cast<T>(1.0 + beta * std::pow(static_cast<double>(c.log_n), gamma));
        }
    }
    c.qs4 = c.q4;
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h)
        for (Eigen::Index d = 0; d < Dh; ++d) c.qs4(s, h, 0, d) *= c.S(s, h);
    return with_normalizer(cfg.variant,
                           [&](auto norm) { return rowwise_attention(c.qs4, c.k4, c.v4, norm); });
  }

  Tensor4<T> manual_backward(const Cache<T>& c, const Tensor4<T>& do4, Mat<T>& dXq) {
    const Eigen::Index B = c.B, H = cfg.heads, Dh = cfg.head_dim;
    AttentionGrads<T> ag = with_normalizer(
        cfg.variant, [&](auto norm) { return rowwise_attention_backward(c.qs4, c.k4, c.v4, do4, norm); });
    // qs = S q: dq = S dqs, dS = <dqs, q> per head.
    Tensor4<T> dq4(B, H, 1, Dh);
    Mat<T> dS = Mat<T>::Zero(B, H);
    for (Eigen::Index s = 0; s < B; ++s)
      for (Eigen::Index h = 0; h < H; ++h)
        for (Eigen::Index d = 0; d < Dh; ++d) {
          dq4(s, h, 0, d) = c.S(s, h) * ag.dq(s, h, 0, d);
          dS(s, h) += ag.dq(s, h, 0, d) * c.q4(s, h, 0, d);
        }
    if (cfg.variant == Variant::scalable_softmax) {
      g.ss_beta = dS.colwise().sum() * c.log_n;
    } else if (cfg.variant == Variant::asentmax) {
      // s = 1 + softplus(a) L^gamma, gamma = 2 tanh(c), L = log(n + 2)
      Mat<T> dA(B, H), dC(B, H);
      const double L = static_cast<double>(c.log_n);
      for (Eigen::Index s = 0; s < B; ++s)
        for (Eigen::Index h = 0; h < H; ++h) {
          const double a = static_cast<double>(c.A(s, h)), th = std::tanh(static_cast<double>(c.C(s, h)));
          const double beta = softplus(a), lg = std::pow(L, 2.0 * th);
          const double ds = static_cast<double>(dS(s, h));
          dA(s, h) = static_cast<T>(ds * lg * sigmoid(a));
          dC(s, h) = static_cast<T>(ds * beta * lg * std::log(L) * 2.0 * (1.0 - th * th));
        }
      g.as_wb.noalias() = dA.transpose() * c.Xq;
      g.as_bb = dA.colwise().sum();
      g.as_wg.noalias() = dC.transpose() * c.Xq;
      g.as_bg = dC.colwise().sum();
      dXq.noalias() += dA * w.as_wb + dC * w.as_wg;
    }
    dk4_ = std::move(ag.dk);
    dv4_ = std::move(ag.dv);
    return dq4;
  }
};

}  // namespace example
