// libFuzzer harness: entmax::entmax_bisect (any alpha > 1) forward, backward and alpha-gradient, float
// and double (see row_harness.hpp).
#include <entmax/entmax_bisect.hpp>

#include "row_harness.hpp"

namespace {
struct Family {
  static constexpr const char* name = "entmax_bisect";
  static constexpr bool has_alpha = true;
  static constexpr bool has_alpha_grad = true;
  static constexpr double fixed_alpha = 0;
  template <class T>
  static entmax::RowStats<T> forward(const T* z, T* p, std::size_t n, T alpha) {
    return entmax::entmax_bisect(z, p, n, alpha);
  }
  template <class T>
  static void backward(const T* p, const T* dp, T* dz, std::size_t n, T alpha) {
    entmax::entmax_bisect_backward(p, dp, dz, n, alpha);
  }
  template <class T>
  static T alpha_grad(const T* p, const T* dp, std::size_t n, T alpha) {
    return entmax::entmax_alpha_grad(p, dp, n, alpha);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return entmax_fuzz::row_fuzz_one<Family>(data, size);
}
