// Per-thread scratch memory for the threshold searches (candidate buffers).
#pragma once

#include <cstddef>
#include <vector>

namespace entmax::detail {

/// A thread-local buffer of at least n elements of T (grown, never shrunk). Valid until the
/// next call with the same T on the same thread; the row kernels use it and do not nest.
template <class T>
inline T* scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace entmax::detail
