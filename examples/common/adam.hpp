// Adam (Kingma & Ba 2015) over a list of Eigen parameter blocks, with optional global-norm clipping.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <cstddef>
#include <vector>

namespace example {

template <class Mat>
class Adam {
 public:
  using T = typename Mat::Scalar;

  /// `params` and `grads` are parallel lists of blocks; they must outlive the optimizer.
  Adam(std::vector<Mat*> params, std::vector<Mat*> grads, T lr, T beta1 = T(0.9), T beta2 = T(0.999),
       T eps = T(1e-8))
      : params_(std::move(params)), grads_(std::move(grads)), lr_(lr), b1_(beta1), b2_(beta2), eps_(eps) {
    for (const Mat* p : params_) {
      m_.push_back(Mat::Zero(p->rows(), p->cols()));
      v_.push_back(Mat::Zero(p->rows(), p->cols()));
    }
  }

  void set_lr(T lr) { lr_ = lr; }

  /// One update; if clip > 0 the gradient is first rescaled to global norm <= clip.
  /// Returns the gradient's global norm before clipping.
  T step(T clip = T(0)) {
    double sq = 0;
    for (const Mat* g : grads_) sq += static_cast<double>(g->squaredNorm());
    const T norm = static_cast<T>(std::sqrt(sq));
    const T factor = (clip > T(0) && norm > clip) ? clip / norm : T(1);
    ++t_;
    const T c1 = T(1) - static_cast<T>(std::pow(static_cast<double>(b1_), static_cast<double>(t_)));
    const T c2 = T(1) - static_cast<T>(std::pow(static_cast<double>(b2_), static_cast<double>(t_)));
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Mat g = *grads_[i] * factor;
      m_[i] = b1_ * m_[i] + (T(1) - b1_) * g;
      v_[i] = b2_ * v_[i] + (T(1) - b2_) * g.cwiseProduct(g);
      params_[i]->array() -= lr_ * (m_[i].array() / c1) / ((v_[i].array() / c2).sqrt() + eps_);
    }
    return norm;
  }

 private:
  std::vector<Mat*> params_, grads_;
  std::vector<Mat> m_, v_;
  T lr_, b1_, b2_, eps_;
  long t_ = 0;
};

}  // namespace example
