// entmax_sort (exact sort-based α-entmax) against the long-double reference and invariants.
#include <entmax/entmax_sort.hpp>

#include <entmax/entmax15.hpp>
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include "reference/alpha.hpp"
#include "row_map_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using entmax_test::eps;
using entmax_test::make_row;
using ld = long double;

namespace {

const std::vector<double> kAlphas = {1.01, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0};

template <class T>
ld forward_tolerance(double alpha) {
  return alpha <= 2.0 ? 16 * eps<T>() : 4 * std::pow(eps<T>(), 1.0L / (static_cast<ld>(alpha) - 1));
}

}  // namespace

TEMPLATE_TEST_CASE("entmax_sort matches the long-double reference", "[entmax_sort]", float, double) {
  using T = TestType;
  std::uint64_t seed = Catch::rngSeed() + 11;
  std::vector<std::size_t> sizes = entmax_test::small_sizes();
  sizes.push_back(1000);
  for (double alpha : kAlphas) {
    for (std::size_t n : sizes) {
      for (const auto& f : entmax_test::families()) {
        const std::vector<T> z = make_row<T>(f, n, ++seed);
        std::vector<T> p(n, T(-7));
        const auto s = entmax::entmax_sort(z.data(), p.data(), n, T(alpha));
        const auto r = ref_alpha::entmax_alpha(z.data(), n, static_cast<ld>(T(alpha)));
        INFO("alpha=" << alpha << " " << f << " n=" << n << " seed=" << Catch::rngSeed());
        const ld tol = forward_tolerance<T>(alpha);
        ld worst = 0, sum = 0;
        std::size_t bad = 0, nonzero = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const ld d = std::fabs(static_cast<ld>(p[i]) - r.p[i]);
          worst = std::max(worst, d);
          bad += !(d <= tol) || !(p[i] >= T(0) && p[i] <= T(1));
          bad += alpha <= 2.0 && r.p[i] == 0 && p[i] != T(0);
          sum += p[i];
          nonzero += p[i] != T(0);
        }
        INFO("worst " << static_cast<double>(worst / eps<T>()) << " eps");
        CHECK(bad == 0);
        CHECK(std::fabs(sum - 1) <= (sizeof(T) == 4 ? 4 : 16) * eps<T>());
        CHECK(s.support == nonzero);
        CHECK(s.max == *std::max_element(z.begin(), z.end()));
        // In-place gives the same bits.
        std::vector<T> q = z;
        entmax::entmax_sort(q.data(), q.data(), n, T(alpha));
        CHECK(std::memcmp(q.data(), p.data(), n * sizeof(T)) == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("entmax_sort at alpha = 2 and 1.5 equals sparsemax and entmax15", "[entmax_sort]", float,
                   double) {
  using T = TestType;
  std::uint64_t seed = Catch::rngSeed() + 22;
  for (std::size_t n : {1u, 2u, 3u, 7u, 16u, 17u, 100u, 1000u}) {
    for (const auto& f : entmax_test::families()) {
      const std::vector<T> z = make_row<T>(f, n, ++seed);
      std::vector<T> a(n), b(n);
      INFO(f << " n=" << n << " seed=" << Catch::rngSeed());
      entmax::entmax_sort(z.data(), a.data(), n, T(2));
      entmax::sparsemax(z.data(), b.data(), n);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(static_cast<ld>(a[i]) - b[i]) <= 8 * eps<T>());
      CHECK(bad == 0);
      entmax::entmax_sort(z.data(), a.data(), n, T(1.5));
      entmax::entmax15(z.data(), b.data(), n);
      bad = 0;
      for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(static_cast<ld>(a[i]) - b[i]) <= 8 * eps<T>());
      CHECK(bad == 0);
    }
  }
}

TEMPLATE_TEST_CASE("entmax_sort special rows and ties", "[entmax_sort]", float, double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  for (double alpha : kAlphas) {
    const T a = T(alpha);
    INFO("alpha=" << alpha);
    std::vector<T> m(9, -inf), pm(9, T(5));
    const auto s = entmax::entmax_sort(m.data(), pm.data(), 9, a);
    CHECK(s.support == 0);
    for (T v : pm) CHECK(v == T(0));
    std::vector<T> zn = {T(1), std::numeric_limits<T>::quiet_NaN(), T(0)}, pn(3);
    CHECK(entmax::entmax_sort(zn.data(), pn.data(), 3, a).support == 0);
    for (T v : pn) CHECK(std::isnan(v));
    std::vector<T> zi = {T(1), inf, T(0)}, pi(3);
    entmax::entmax_sort(zi.data(), pi.data(), 3, a);
    for (T v : pi) CHECK(std::isnan(v));
    // Ties: equal mass; all equal: 1/n; n = 1: 1; -inf entries exactly 0.
    std::vector<T> zt = {T(2), T(-1), T(2), T(0.5), -inf, T(0.5)}, pt(6);
    entmax::entmax_sort(zt.data(), pt.data(), 6, a);
    CHECK(pt[0] == pt[2]);
    CHECK(pt[3] == pt[5]);
    CHECK(pt[4] == T(0));
    std::vector<T> ze(7, T(3)), pe(7);
    entmax::entmax_sort(ze.data(), pe.data(), 7, a);
    for (T v : pe) CHECK(entmax_test::ulp_distance(v, static_cast<T>(1.0L / 7)) <= 1);
    T one = T(-4);
    entmax::entmax_sort(&one, &one, 1, a);
    CHECK(one == T(1));
  }
}

TEMPLATE_TEST_CASE("entmax_sort rejects bad alpha before writing", "[entmax_sort]", float, double) {
  using T = TestType;
  const std::vector<T> z = {T(0.5), T(-1), T(2)};
  for (T bad : {T(1), T(0), std::numeric_limits<T>::quiet_NaN(), -std::numeric_limits<T>::infinity()}) {
    std::vector<T> p(3, T(42));
    CHECK_THROWS_AS(entmax::entmax_sort(z.data(), p.data(), 3, bad), std::domain_error);
    for (T v : p) CHECK(v == T(42));
  }
  std::vector<T> p(3);
  CHECK_THROWS_WITH(entmax::entmax_sort(z.data(), p.data(), 3, T(1)),
                    Catch::Matchers::StartsWith("entmax::entmax_sort: alpha must be > 1 (got 1)"));
}
