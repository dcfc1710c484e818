// The Normalizer trait and the policy types for the row maps: what the Eigen adapters and the
// attention operator are generic over.
#pragma once

#include <entmax/config.hpp>
#include <entmax/entmax15.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/entmax_sort.hpp>
#include <entmax/error.hpp>
#include <entmax/row_stats.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>

#include <cstddef>
#include <type_traits>
#include <utility>

namespace entmax {

// A normalizer policy N models Normalizer<N, T> when, for const N n, const T* z, T* p, dp, dz,
// RowStats<T> s and std::size_t len:
//   n.forward(z, p, len)            -> RowStats<T>    p = map(z); z and p may alias
//   n.backward(p, dp, dz, len)                        dz = J(p)^T dp; dp and dz may alias
//   n.from_stats(z, s, p, len)                        rebuilds forward's p from (z, s)
//   N::is_sparse                    constexpr bool    whether outputs can hold exact zeros

/// Softmax: p = exp(z − logsumexp(z)). The dense baseline.
struct Softmax {
  static constexpr bool is_sparse = false;
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    return softmax(z, p, n);
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    softmax_backward(p, dp, dz, n);
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    softmax_from_stats(z, s, p, n);
  }
};

/// Sparsemax (α = 2): Euclidean projection onto the simplex, exact.
struct Sparsemax {
  static constexpr bool is_sparse = true;
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    return sparsemax(z, p, n);
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    sparsemax_backward(p, dp, dz, n);
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    sparsemax_from_stats(z, s, p, n);
  }
};

/// 1.5-entmax, exact.
struct Entmax15 {
  static constexpr bool is_sparse = true;
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    return entmax15(z, p, n);
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    entmax15_backward(p, dp, dz, n);
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    entmax15_from_stats(z, s, p, n);
  }
};

/// α-entmax for any α > 1 by the fast exact threshold search of entmax_bisect.
template <class Scalar = double>
struct EntmaxBisect {
  static constexpr bool is_sparse = true;
  Scalar alpha;
  explicit EntmaxBisect(Scalar a) : alpha(a) { detail::check_alpha("entmax::EntmaxBisect", a); }
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    return entmax_bisect(z, p, n, T(alpha));
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    entmax_bisect_backward(p, dp, dz, n, T(alpha));
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    entmax_from_stats(z, s, p, n, T(alpha));
  }
};
EntmaxBisect(float)->EntmaxBisect<float>;
EntmaxBisect(double)->EntmaxBisect<double>;

/// α-entmax for any α > 1 by sorting (O(n log n)); reference-grade, for checking.
template <class Scalar = double>
struct EntmaxSort {
  static constexpr bool is_sparse = true;
  Scalar alpha;
  explicit EntmaxSort(Scalar a) : alpha(a) { detail::check_alpha("entmax::EntmaxSort", a); }
  template <class T>
  RowStats<T> forward(const T* z, T* p, std::size_t n) const {
    return entmax_sort(z, p, n, T(alpha));
  }
  template <class T>
  void backward(const T* p, const T* dp, T* dz, std::size_t n) const {
    entmax_bisect_backward(p, dp, dz, n, T(alpha));
  }
  template <class T>
  void from_stats(const T* z, const RowStats<T>& s, T* p, std::size_t n) const {
    entmax_from_stats(z, s, p, n, T(alpha));
  }
};
EntmaxSort(float)->EntmaxSort<float>;
EntmaxSort(double)->EntmaxSort<double>;

namespace detail {
template <class N, class T, class = void>
struct models_normalizer : std::false_type {};
template <class N, class T>
struct models_normalizer<
    N, T,
    std::void_t<decltype(std::declval<const N&>().forward(std::declval<const T*>(), std::declval<T*>(),
                                                          std::size_t{})),
                decltype(std::declval<const N&>().backward(std::declval<const T*>(), std::declval<const T*>(),
                                                           std::declval<T*>(), std::size_t{})),
                decltype(std::declval<const N&>().from_stats(std::declval<const T*>(),
                                                             std::declval<const RowStats<T>&>(),
                                                             std::declval<T*>(), std::size_t{})),
                decltype(bool{N::is_sparse})>>
    : std::is_same<decltype(std::declval<const N&>().forward(std::declval<const T*>(), std::declval<T*>(),
                                                             std::size_t{})),
                   RowStats<T>> {};
}  // namespace detail

/// True when N models the Normalizer trait for scalar type T (see the comment above).
template <class N, class T>
struct is_normalizer : detail::models_normalizer<std::decay_t<N>, T> {};
template <class N, class T>
inline constexpr bool is_normalizer_v = is_normalizer<N, T>::value;

#if ENTMAX_HAS_CONCEPTS
template <class N, class T>
concept Normalizer = is_normalizer_v<N, T>;
#endif

}  // namespace entmax
