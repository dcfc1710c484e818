#include <entmax/row_scaled.hpp>

#include <entmax/asentmax.hpp>
#include <entmax/normalizer.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace {

template <class T>
std::vector<T> gaussian(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> nd(0.0, scale);
  std::vector<T> z(n);
  for (auto& v : z) v = static_cast<T>(nd(rng));
  return z;
}

struct NotScaled {};
struct ScaledFalse {
  static constexpr bool is_row_scaled = false;
};

}  // namespace

static_assert(!entmax::is_row_scaled_v<NotScaled>);
static_assert(!entmax::is_row_scaled_v<ScaledFalse>);
static_assert(!entmax::is_row_scaled_v<entmax::Entmax15>);
static_assert(entmax::is_row_scaled_v<entmax::PerRowScale<float, entmax::Entmax15>>);
static_assert(entmax::is_row_scaled_v<const entmax::ASEntmax<double>&>);

TEMPLATE_TEST_CASE("masked_dot skips -inf entries, propagates NaN and sums in double", "[row_scaled]", float,
                   double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 83);
  const T ninf = -std::numeric_limits<T>::infinity();
  for (std::size_t n : {0u, 1u, 2u, 3u, 4u, 5u, 7u, 8u, 9u, 15u, 16u, 17u, 31u, 32u, 33u, 1000u, 100000u}) {
    INFO("n=" << n);
    auto g = gaussian<T>(rng, n, 1.0);
    auto z = gaussian<T>(rng, n, 3.0);
    for (std::size_t i = 0; i < n; i += 3) {
      z[i] = ninf;
      g[i] = T(0);
    }
    long double want = 0, mag = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (z[i] == ninf) continue;
      want += static_cast<long double>(g[i]) * static_cast<long double>(z[i]);
      mag += std::fabs(static_cast<long double>(g[i]) * static_cast<long double>(z[i]));
    }
    const T got = entmax::masked_dot(g.data(), z.data(), n);
    // Products are exact in double and sums carry double rounding; the result is rounded to T.
    const double tol =
        static_cast<double>(std::numeric_limits<T>::epsilon()) * std::fabs(static_cast<double>(want)) +
        1e-15 * static_cast<double>(n) * static_cast<double>(mag) + 1e-300;
    CHECK(std::fabs(static_cast<double>(got) - static_cast<double>(want)) <= tol);
    // The fused variant returns the same value and scales g.
    std::vector<T> gs = g;
    const T got2 = entmax::masked_dot_then_scale(gs.data(), z.data(), n, T(2.5));
    CHECK(got2 == got);
    for (std::size_t i = 0; i < n; ++i) CHECK(gs[i] == T(2.5) * g[i]);
    if (n > 0) {
      z[n - 1] = std::numeric_limits<T>::quiet_NaN();
      CHECK(std::isnan(entmax::masked_dot(g.data(), z.data(), n)));
      z[n - 1] = std::numeric_limits<T>::infinity();
      g[n - 1] = T(1);
      CHECK(!std::isfinite(entmax::masked_dot(g.data(), z.data(), n)));
    }
  }
}

TEMPLATE_TEST_CASE("PerRowScale through row_scaled_forward/backward equals ASEntmax with the same scale",
                   "[row_scaled]", float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed() + 89);
  const std::size_t rows = 4, n = 37;
  const std::vector<T> beta = {T(0.2), T(0.9), T(1.4), T(0.0)}, gamma = {T(-1), T(0), T(0.5), T(1.5)};
  std::vector<T> scales(rows), dscales(rows, T(-9));
  for (std::size_t r = 0; r < rows; ++r) scales[r] = entmax::asentmax_scale(beta[r], gamma[r], T(1), 2 + r);
  const entmax::PerRowScale<T, entmax::Entmax15> pol(entmax::Entmax15{}, scales.data(), dscales.data());
  for (std::size_t r = 0; r < rows; ++r) {
    const auto z = gaussian<T>(rng, n, 1.0);
    const auto dp = gaussian<T>(rng, n, 1.0);
    std::vector<T> p1(n), p2(n), dz1(n), dz2(n);
    const auto s1 = entmax::row_scaled_forward(pol, r, 2 + r, z.data(), p1.data(), n);
    const auto s2 = entmax::asentmax(z.data(), p2.data(), n, T(1.5), beta[r], gamma[r], T(1), 2 + r);
    CHECK(p1 == p2);
    CHECK(s1.support == s2.support);
    CHECK(s1.max == s2.max);
    const T ds = entmax::row_scaled_backward(pol, r, 2 + r, z.data(), p1.data(), dp.data(), dz1.data(), n);
    const auto g = entmax::asentmax_backward(z.data(), p2.data(), dp.data(), dz2.data(), n, T(1.5), beta[r],
                                             gamma[r], T(1), 2 + r);
    CHECK(dz1 == dz2);
    CHECK(ds == g.ds);
    CHECK(dscales[r] == g.ds);
  }
  // npos < 2: fully masked by convention, zeros and a zero gradient, whatever the scores.
  std::vector<T> z = gaussian<T>(rng, n, 1.0), p(n, T(5)), dz(n, T(5)), dp(n, T(1));
  const auto st = entmax::row_scaled_forward(pol, 1, 1, z.data(), p.data(), n);
  CHECK(st.support == 0);
  CHECK(entmax::row_scaled_backward(pol, 1, 1, z.data(), p.data(), dp.data(), dz.data(), n) == T(0));
  for (std::size_t i = 0; i < n; ++i) CHECK((p[i] == T(0) && dz[i] == T(0)));
  CHECK(dscales[1] == T(0));
  // A scale that is not finite and > 0 gives that row NaN (like an ASEntmax temperature).
  for (T bad : {T(0), T(-2), std::numeric_limits<T>::infinity(), std::numeric_limits<T>::quiet_NaN()}) {
    const std::vector<T> bad_scales(rows, bad);
    const entmax::PerRowScale<T, entmax::Entmax15> bad_pol(entmax::Entmax15{}, bad_scales.data());
    entmax::row_scaled_forward(bad_pol, 0, 5, z.data(), p.data(), n);
    for (std::size_t i = 0; i < n; ++i) CHECK(std::isnan(p[i]));
  }
}

TEST_CASE("sum_rows_per_head handles partial blocks and rejects zero extents", "[row_scaled]") {
  const std::vector<double> v = {1, 2, 3, 4,
                                 5, 6, 7};  // heads 2, rows_per_head 2: h0 = rows 0,1,4,5; h1 = 2,3,6
  std::vector<double> out(2);
  entmax::sum_rows_per_head(v.data(), v.size(), 2, 2, out.data());
  CHECK(out[0] == 1 + 2 + 5 + 6);
  CHECK(out[1] == 3 + 4 + 7);
  CHECK_THROWS_AS(entmax::sum_rows_per_head(v.data(), v.size(), 0, 2, out.data()), std::invalid_argument);
  CHECK_NOTHROW(entmax::sum_rows_per_head(v.data(), 0, 0, 0, out.data()));
}

TEMPLATE_TEST_CASE("row_scaled_forward/backward shift by the row max: huge finite scores stay valid",
                   "[row_scaled][overflow]", float, double) {
  using T = TestType;
  const T big = std::numeric_limits<T>::max();
  const std::vector<T> scales{T(1496), T(1496)};
  std::vector<T> dscales(2, T(-9));
  const entmax::PerRowScale<T, entmax::Entmax15> pol(entmax::Entmax15{}, scales.data(), dscales.data());
  T z1 = T(-3.58e37), p1 = T(-1);
  entmax::row_scaled_forward(pol, 0, 2, &z1, &p1, 1);
  CHECK(p1 == T(1));
  std::vector<T> z{big, -big, T(0), big}, p(4, T(-1));
  const auto st = entmax::row_scaled_forward(pol, 1, 5, z.data(), p.data(), 4);
  CHECK(std::fabs(static_cast<double>(p[0]) - 0.5) <= 2.0 * std::numeric_limits<T>::epsilon());
  CHECK(std::fabs(static_cast<double>(p[3]) - 0.5) <= 2.0 * std::numeric_limits<T>::epsilon());
  CHECK(p[1] == T(0));
  CHECK(p[2] == T(0));
  CHECK(st.max == T(0));
  CHECK(st.support == 2);
  const std::vector<T> dp{T(0), T(3), T(5), T(1)};
  std::vector<T> dz(4, T(-7));
  const T ds = entmax::row_scaled_backward(pol, 1, 5, z.data(), p.data(), dp.data(), dz.data(), 4);
  // Only the tie is in the support and dp is 0 and 1 there: g = (−w, 0, 0, w), ⟨g, z − max z⟩ = 0.
  CHECK(std::isfinite(ds));
  CHECK(std::fabs(static_cast<double>(ds)) <= 1e-6);
  CHECK(dscales[1] == ds);
  for (T v : dz) CHECK(std::isfinite(v));
  CHECK(dz[1] == T(0));
  CHECK(dz[2] == T(0));
  CHECK(dz[3] > T(0));
}
