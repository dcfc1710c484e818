// The one place that knows xsimd's version differences (8.1 `hadd` vs later `reduce_add`,
// no `reduce_max` in 8.1). Row kernels use only these names and xsimd's batch operators.
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>

namespace entmax::detail {

template <class T, class Arch>
using batch = xsimd::batch<T, Arch>;

template <class T, class Arch>
inline constexpr std::size_t batch_size = xsimd::batch<T, Arch>::size;

/// Sum of the lanes.
template <class T, class Arch>
inline T reduce_add(const xsimd::batch<T, Arch>& x) {
#if XSIMD_VERSION_MAJOR >= 10
  return xsimd::reduce_add(x);
#else
  return xsimd::hadd(x);
#endif
}

/// Largest lane (NaN lanes follow std::max order; callers detect NaN separately).
template <class T, class Arch>
inline T reduce_max(const xsimd::batch<T, Arch>& x) {
#if XSIMD_VERSION_MAJOR >= 10
  return xsimd::reduce_max(x);
#else
  alignas(64) T lanes[xsimd::batch<T, Arch>::size];
  x.store_aligned(lanes);
  T m = lanes[0];
  for (std::size_t i = 1; i < xsimd::batch<T, Arch>::size; ++i) m = std::max(m, lanes[i]);
  return m;
#endif
}

}  // namespace entmax::detail
