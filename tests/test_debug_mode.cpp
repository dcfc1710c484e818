// The opt-in debug mode (ENTMAX_DEBUG = 1 in this translation unit): the public forward entry
// points scan their scores for NaN / +inf and certify their output (0 <= p <= 1, Σp = 1,
// support, τ inside its bracket); the checks themselves reject corrupted rows.
#define ENTMAX_DEBUG 1
#include <entmax/entmax.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

static_assert(ENTMAX_DEBUG == 1, "this test needs the debug mode");

namespace {

using Catch::Matchers::Contains;

template <class T>
using Forward = std::function<entmax::RowStats<T>(const T*, T*, std::size_t)>;

template <class T>
std::vector<std::pair<std::string, Forward<T>>> forwards() {
  return {
      {"softmax", [](const T* z, T* p, std::size_t n) { return entmax::softmax(z, p, n); }},
      {"sparsemax", [](const T* z, T* p, std::size_t n) { return entmax::sparsemax(z, p, n); }},
      {"entmax15", [](const T* z, T* p, std::size_t n) { return entmax::entmax15(z, p, n); }},
      {"entmax_bisect",
       [](const T* z, T* p, std::size_t n) { return entmax::entmax_bisect(z, p, n, T(1.3)); }},
      {"entmax_bisect", [](const T* z, T* p, std::size_t n) { return entmax::entmax_bisect(z, p, n, T(3)); }},
      {"entmax_sort", [](const T* z, T* p, std::size_t n) { return entmax::entmax_sort(z, p, n, T(1.7)); }},
      {"entmax15",  // asentmax with α = 1.5 runs the entmax15 kernel on the scaled row
       [](const T* z, T* p, std::size_t n) {
         return entmax::asentmax(z, p, n, T(1.5), T(1), T(1), T(1), n + 2);
       }},
      {"softmax",  // scalable softmax runs softmax on the scaled row
       [](const T* z, T* p, std::size_t n) { return entmax::scalable_softmax(z, p, n, T(0.7), n + 2); }},
  };
}

}  // namespace

TEMPLATE_TEST_CASE("debug mode: NaN / +inf scores raise domain_error naming the function and the index",
                   "[debug]", float, double) {
  using T = TestType;
  for (const auto& [name, f] : forwards<T>()) {
    for (std::size_t n : std::vector<std::size_t>{1, 5, 16, 33}) {
      for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
        std::vector<T> z(n, T(0.25)), p(n);
        const std::size_t at = n / 2;
        z[at] = bad;
        INFO(name << " n=" << n << " bad=" << bad);
        try {
          f(z.data(), p.data(), n);
          FAIL_CHECK("no exception");
        } catch (const std::domain_error& e) {
          CHECK_THAT(e.what(),
                     Contains(name) && Contains("debug check") && Contains("score " + std::to_string(at)));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("debug mode: valid rows pass the post-condition checks", "[debug]", float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed());
  INFO("seed " << Catch::rngSeed());
  const T inf = std::numeric_limits<T>::infinity();
  for (const auto& [name, f] : forwards<T>()) {
    for (std::size_t n : std::vector<std::size_t>{1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 1000, 4099}) {
      for (double sd : {1e-3, 0.25, 1.0, 30.0, 1e6}) {
        std::normal_distribution<double> g(0.0, sd);
        std::vector<T> z(n), p(n);
        for (T& v : z) v = static_cast<T>(g(rng));
        if (n > 4) z[1] = -inf, z[n - 1] = z[0];  // a masked entry and a tie
        INFO(name << " n=" << n << " sd=" << sd);
        CHECK_NOTHROW(f(z.data(), p.data(), n));
      }
      // Fully masked and single-survivor rows are valid too.
      std::vector<T> z(n, -inf), p(n);
      CHECK_NOTHROW(f(z.data(), p.data(), n));
      z[n / 2] = T(-1e30);
      CHECK_NOTHROW(f(z.data(), p.data(), n));
    }
  }
}

TEMPLATE_TEST_CASE("debug mode: adapters and attention go through the checked kernels", "[debug]", float,
                   double) {
  using T = TestType;
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  M z = M::Constant(3, 4, T(0.5)), p(3, 4);
  CHECK_NOTHROW(entmax::normalize_rows(entmax::Entmax15{}, z, p));
  z(1, 2) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH(entmax::normalize_rows(entmax::Sparsemax{}, z, p), Contains("debug check"));

  Eigen::Tensor<T, 4, Eigen::RowMajor> q(1, 2, 3, 4), k(1, 2, 5, 4);
  q.setConstant(T(0.5));
  k.setConstant(T(0.25));
  CHECK_NOTHROW(entmax::attention(q, k, k, entmax::Entmax15{}));
  q(0, 1, 2, 3) = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_WITH(entmax::attention(q, k, k, entmax::Sparsemax{}), Contains("debug check"));
}

TEMPLATE_TEST_CASE("debug checks reject corrupted rows", "[debug]", float, double) {
  using T = TestType;
  using entmax::RowStats;
  using entmax::detail::debug_check_row;
  const T eps = std::numeric_limits<T>::epsilon();
  // A correct sparsemax row of z = (1, 0.5, -3): p = (0.75, 0.25, 0), τ = -0.75 (shifted).
  std::vector<T> p = {T(0.75), T(0.25), T(0)};
  const RowStats<T> ok{T(1), T(-0.75), 2};
  CHECK_NOTHROW(debug_check_row("f", p.data(), 3, ok, 2.0));
  // Σp off by far more than n ε.
  std::vector<T> off = {T(0.75), T(0.25) + 64 * eps, T(0)};
  CHECK_THROWS_WITH(debug_check_row("f", off.data(), 3, ok, 2.0), Contains("f: debug check: sum of p"));
  // p outside [0, 1].
  std::vector<T> neg = {T(1.25), T(-0.25), T(0)};
  CHECK_THROWS_WITH(debug_check_row("f", neg.data(), 3, ok, 2.0), Contains("outside [0, 1]"));
  std::vector<T> nan = {std::numeric_limits<T>::quiet_NaN(), T(0.25), T(0)};
  CHECK_THROWS_AS(debug_check_row("f", nan.data(), 3, ok, 2.0), std::domain_error);
  // Support that does not match the non-zeros, or is empty for an unmasked row.
  CHECK_THROWS_WITH(debug_check_row("f", p.data(), 3, RowStats<T>{T(1), T(-0.75), 3}, 2.0),
                    Contains("support 3"));
  std::vector<T> zeros = {T(0), T(0), T(0)};
  CHECK_THROWS_WITH(debug_check_row("f", zeros.data(), 3, RowStats<T>{T(1), T(-0.75), 0}, 2.0),
                    Contains("sum of p"));
  // τ outside [−1, −n^(1−α)].
  CHECK_THROWS_WITH(debug_check_row("f", p.data(), 3, RowStats<T>{T(1), T(-1.5), 2}, 2.0), Contains("tau"));
  CHECK_THROWS_WITH(debug_check_row("f", p.data(), 3, RowStats<T>{T(1), T(-0.1), 2}, 2.0), Contains("tau"));
  // Softmax (α = 1) has no bracket; fully masked and NaN rows are not certified.
  CHECK_NOTHROW(debug_check_row("f", p.data(), 3, RowStats<T>{T(1), T(5), 2}, 1.0));
  CHECK_NOTHROW(
      debug_check_row("f", zeros.data(), 3, RowStats<T>{-std::numeric_limits<T>::infinity(), T(0), 0}, 2.0));
  // Gradient inputs.
  std::vector<T> dp = {T(1), std::numeric_limits<T>::infinity(), T(0)};
  CHECK_THROWS_WITH(entmax::detail::debug_check_finite("g", "dp", dp.data(), 3),
                    Contains("g: debug check: dp[1]"));
}

TEMPLATE_TEST_CASE("debug mode: every backward rejects non-finite p or dp, naming itself", "[debug]", float,
                   double) {
  using T = TestType;
  using Backward = std::function<void(const T*, const T*, T*, std::size_t)>;
  const std::vector<std::pair<std::string, Backward>> backwards = {
      {"entmax::softmax_backward",
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::softmax_backward(p, dp, dz, n); }},
      {"entmax::sparsemax_backward",
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::sparsemax_backward(p, dp, dz, n); }},
      {"entmax::entmax15_backward",
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::entmax15_backward(p, dp, dz, n); }},
      {"entmax::entmax_bisect_backward",
       [](const T* p, const T* dp, T* dz, std::size_t n) {
         entmax::entmax_bisect_backward(p, dp, dz, n, T(1.3));
       }},
      {"entmax::entmax_alpha_grad",
       [](const T* p, const T* dp, T* dz, std::size_t n) {
         dz[0] = entmax::entmax_alpha_grad(p, dp, n, T(1.3));
       }},
  };
  const std::vector<T> p = {T(0.75), T(0.25), T(0)}, dp = {T(1), T(-2), T(0.5)};
  for (const auto& [name, backward] : backwards) {
    INFO(name);
    std::vector<T> dz(3, T(7));
    CHECK_NOTHROW(backward(p.data(), dp.data(), dz.data(), 3));
    for (std::size_t at = 0; at < 3; ++at) {
      std::vector<T> bad_dp = dp, bad_p = p;
      bad_dp[at] = std::numeric_limits<T>::quiet_NaN();
      bad_p[at] = std::numeric_limits<T>::infinity();
      CHECK_THROWS_WITH(backward(p.data(), bad_dp.data(), dz.data(), 3),
                        Contains(name + ": debug check: dp[" + std::to_string(at) + "]"));
      CHECK_THROWS_WITH(backward(bad_p.data(), dp.data(), dz.data(), 3),
                        Contains(name + ": debug check: p[" + std::to_string(at) + "]"));
    }
  }
}
