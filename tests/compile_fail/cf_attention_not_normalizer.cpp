// EXPECT: entmax::attention: the normalizer must model entmax::Normalizer
// Compiled by tests/compile_fail/CMakeLists.txt without and with ENTMAX_COMPILE_FAIL.
#include <entmax/attention.hpp>

#include <cstddef>

namespace {
// Has a forward, but no backward / from_stats / is_sparse: not a Normalizer.
struct NotANormalizer {
  template <class T>
  entmax::RowStats<T> forward(const T*, T*, std::size_t) const {
    return {};
  }
};
}  // namespace

int main() {
  Eigen::Tensor<float, 4, Eigen::RowMajor> q(1, 1, 2, 4), k(1, 1, 3, 4);
  q.setZero();
  k.setZero();
#if ENTMAX_COMPILE_FAIL
  auto o = entmax::attention(q, k, k, NotANormalizer{});
#else
  auto o = entmax::attention(q, k, k, entmax::Entmax15{});
#endif
  return o.size() == 8 ? 0 : 1;
}
