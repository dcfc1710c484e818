// libFuzzer harness: entmax::softmax forward and backward, float and double (see row_harness.hpp).
#include <entmax/softmax.hpp>

#include "row_harness.hpp"

namespace {
struct Family {
  static constexpr const char* name = "softmax";
  static constexpr bool has_alpha = false;
  static constexpr bool has_alpha_grad = false;
  static constexpr double fixed_alpha = 1;
  template <class T>
  static entmax::RowStats<T> forward(const T* z, T* p, std::size_t n, T) {
    return entmax::softmax(z, p, n);
  }
  template <class T>
  static void backward(const T* p, const T* dp, T* dz, std::size_t n, T) {
    entmax::softmax_backward(p, dp, dz, n);
  }
  template <class T>
  static T alpha_grad(const T*, const T*, std::size_t, T) {
    return T(0);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return entmax_fuzz::row_fuzz_one<Family>(data, size);
}
