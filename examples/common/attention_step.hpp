// Attention composed by hand from a normalizer's row functions: O = normalizer(Q K^T / sqrt(d)) V
// and its backward over row-major [batch, heads, length, head_dim] tensors, every key visible.
// The model trains with entmax::attention / entmax::attention_backward; this straightforward
// version is the independent path the example checks them against.
#pragma once

#include <entmax/normalizer.hpp>

#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <cstddef>
#include <vector>

namespace example {

template <class T>
using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;

template <class T>
struct AttentionGrads {
  Tensor4<T> dq, dk, dv;
};

/// Attention with every key visible to every query, composed row by row from `norm`.
template <class T, class N>
Tensor4<T> rowwise_attention(const Tensor4<T>& q, const Tensor4<T>& k, const Tensor4<T>& v, const N& norm) {
  const Eigen::Index B = q.dimension(0), H = q.dimension(1), Nq = q.dimension(2), D = q.dimension(3);
  const Eigen::Index Nk = k.dimension(2);
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  Tensor4<T> out(B, H, Nq, D);
  out.setZero();
  std::vector<T> z(static_cast<std::size_t>(Nk)), p(z.size());
  for (Eigen::Index b = 0; b < B; ++b)
    for (Eigen::Index h = 0; h < H; ++h)
      for (Eigen::Index i = 0; i < Nq; ++i) {
        for (Eigen::Index j = 0; j < Nk; ++j) {
          T dot = 0;
          for (Eigen::Index d = 0; d < D; ++d) dot += q(b, h, i, d) * k(b, h, j, d);
          z[static_cast<std::size_t>(j)] = scale * dot;
        }
        norm.forward(z.data(), p.data(), z.size());
        for (Eigen::Index j = 0; j < Nk; ++j) {
          const T pj = p[static_cast<std::size_t>(j)];
          if (pj == T(0)) continue;
          for (Eigen::Index d = 0; d < D; ++d) out(b, h, i, d) += pj * v(b, h, j, d);
        }
      }
  return out;
}

/// Backward of rowwise_attention: given dL/dO, the gradients with respect to Q, K and V.
template <class T, class N>
AttentionGrads<T> rowwise_attention_backward(const Tensor4<T>& q, const Tensor4<T>& k, const Tensor4<T>& v,
                                             const Tensor4<T>& dout, const N& norm) {
  const Eigen::Index B = q.dimension(0), H = q.dimension(1), Nq = q.dimension(2), D = q.dimension(3);
  const Eigen::Index Nk = k.dimension(2);
  const T scale = T(1) / std::sqrt(static_cast<T>(D));
  AttentionGrads<T> g{Tensor4<T>(B, H, Nq, D), Tensor4<T>(B, H, Nk, D), Tensor4<T>(B, H, Nk, D)};
  g.dq.setZero();
  g.dk.setZero();
  g.dv.setZero();
  std::vector<T> z(static_cast<std::size_t>(Nk)), p(z.size()), dp(z.size()), dz(z.size());
  for (Eigen::Index b = 0; b < B; ++b)
    for (Eigen::Index h = 0; h < H; ++h)
      for (Eigen::Index i = 0; i < Nq; ++i) {
        for (Eigen::Index j = 0; j < Nk; ++j) {
          T dot = 0, dpj = 0;
          for (Eigen::Index d = 0; d < D; ++d) {
            dot += q(b, h, i, d) * k(b, h, j, d);
            dpj += dout(b, h, i, d) * v(b, h, j, d);
          }
          z[static_cast<std::size_t>(j)] = scale * dot;
          dp[static_cast<std::size_t>(j)] = dpj;
        }
        norm.forward(z.data(), p.data(), z.size());
        norm.backward(p.data(), dp.data(), dz.data(), z.size());
        for (Eigen::Index j = 0; j < Nk; ++j) {
          const T pj = p[static_cast<std::size_t>(j)];
          const T dzj = scale * dz[static_cast<std::size_t>(j)];
          for (Eigen::Index d = 0; d < D; ++d) {
            g.dv(b, h, j, d) += pj * dout(b, h, i, d);
            g.dq(b, h, i, d) += dzj * k(b, h, j, d);
            g.dk(b, h, j, d) += dzj * q(b, h, i, d);
          }
        }
      }
  return g;
}

}  // namespace example
