// entmax_bisect (α-entmax for any α > 1), its backward, from_stats and the α-gradient, against
// the long-double reference (tests/reference/alpha.hpp), golden vectors and invariants.
#include <entmax/entmax_bisect.hpp>

#include <entmax/entmax15.hpp>
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include "golden.hpp"
#include "reference/alpha.hpp"
#include "row_map_checks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

using entmax_test::eps;
using entmax_test::make_row;
using ld = long double;

namespace {

const std::vector<double> kAlphas = {1.01, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0};

/// NUMERICS.md: ≤ 16ε abs for α ∈ (1, 2], ≤ 4 ε^{1/(α−1)} for α > 2.
template <class T>
ld forward_tolerance(double alpha) {
  return alpha <= 2.0 ? 16 * eps<T>() : 4 * std::pow(eps<T>(), 1.0L / (static_cast<ld>(alpha) - 1));
}

template <class T>
std::vector<ld> widen(const std::vector<T>& x) {
  return std::vector<ld>(x.begin(), x.end());
}

/// Forward of z at α vs the reference: tolerance, range, Σp, zero pattern, support, max.
template <class T, class A = xsimd::default_arch>
void check_alpha_forward(const std::vector<T>& z, double alpha, const std::string& what) {
  const std::size_t n = z.size();
  std::vector<T> p(n, T(-7));
  const entmax::RowStats<T> s = entmax::entmax_bisect<T, A>(z.data(), p.data(), n, T(alpha));
  const ref_alpha::AlphaResult r = ref_alpha::entmax_alpha(z.data(), n, static_cast<ld>(T(alpha)));
  INFO("alpha=" << alpha << " " << what << " n=" << n << " arch=" << A::name()
                << " seed=" << Catch::rngSeed());
  const ld tol = forward_tolerance<T>(alpha);
  ld worst = 0, sum = 0;
  std::size_t bad = 0, nonzero = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const ld d = std::fabs(static_cast<ld>(p[i]) - r.p[i]);
    worst = std::max(worst, d);
    if (!(d <= tol) || !(p[i] >= T(0) && p[i] <= T(1))) ++bad;
    if (r.p[i] == 0 && p[i] != T(0) && alpha <= 2.0) ++bad;
    sum += p[i];
    nonzero += p[i] != T(0);
  }
  INFO("worst abs error " << static_cast<double>(worst / eps<T>()) << " eps (tolerance "
                          << static_cast<double>(tol / eps<T>()) << " eps)");
  CHECK(bad == 0);
  CHECK(std::fabs(sum - 1) <= (sizeof(T) == 4 ? 4 : 16) * eps<T>());
  CHECK(s.support == nonzero);
  CHECK(s.max == *std::max_element(z.begin(), z.end()));
  // τ lies in its bracket [−1, −n^{1−α}] (with the (n + 16)ε slack of the debug checks: τ is
  // found from sums of n terms).
  const ld slack = static_cast<ld>(n + 16) * eps<T>();
  CHECK(static_cast<ld>(s.tau) >= -1 - slack);
  CHECK(static_cast<ld>(s.tau) <= -std::pow(static_cast<ld>(n), 1 - static_cast<ld>(T(alpha))) * (1 - slack));
  // from_stats rebuilds p (τ was rounded to T: a few ulps).
  std::vector<T> q(n, T(-7));
  entmax::entmax_from_stats<T, A>(z.data(), s, q.data(), n, T(alpha));
  std::size_t diff = 0;
  for (std::size_t i = 0; i < n; ++i) {
    diff += !(std::fabs(static_cast<ld>(q[i]) - static_cast<ld>(p[i])) <=
              (alpha <= 2.0 ? 16 * eps<T>() * (1 / (static_cast<ld>(alpha) - 1)) : tol));
  }
  CHECK(diff == 0);
}

template <class T, class A>
void sweep_arch() {
  std::uint64_t seed = Catch::rngSeed();
  for (double alpha : kAlphas) {
    for (std::size_t n : entmax_test::small_sizes()) {
      for (const auto& f : entmax_test::families()) {
        check_alpha_forward<T, A>(make_row<T>(f, n, ++seed), alpha, f);
      }
    }
  }
}

template <class T, std::size_t... I>
void sweep_all_archs(std::index_sequence<I...>) {
  (sweep_arch<T, std::tuple_element_t<I, entmax_test::Archs>>(), ...);
}

template <class T>
std::vector<T> gaussian(std::size_t n, double scale, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> nd(0.0, scale);
  std::vector<T> z(n);
  for (auto& v : z) v = static_cast<T>(nd(g));
  return z;
}

template <class T>
ld ulps(T a, T b) {
  return entmax_test::ulp_distance(a, b);
}

}  // namespace

TEMPLATE_TEST_CASE("entmax_bisect matches the long-double reference on every arch", "[entmax_bisect]", float,
                   double) {
  sweep_all_archs<TestType>(std::make_index_sequence<std::tuple_size_v<entmax_test::Archs>>{});
}

TEMPLATE_TEST_CASE("entmax_bisect at large n", "[entmax_bisect][large]", float, double) {
  using T = TestType;
  std::uint64_t seed = Catch::rngSeed() + 101;
  for (std::size_t n : {1000u, 4095u, 4096u, 8193u, 100000u}) {
    for (double alpha : {1.25, 1.5, 1.75, 2.0, 3.0}) {
      for (double scale : {0.25, 1.0}) {
        check_alpha_forward<T>(gaussian<T>(n, scale, ++seed), alpha, "gauss" + std::to_string(scale));
      }
    }
  }
}

// The float-lane search of float rows and the counting levels only choose where the double
// iteration starts and which candidates it sees, and the output pass lists moderately sparse
// supports first: rows around the SIMD widths, dense and sparse, α near 1 and large, ties and
// −inf entries must still match the reference, in place too.
TEMPLATE_TEST_CASE("entmax_bisect search phases: SIMD widths, dense and sparse rows, ties, -inf",
                   "[entmax_bisect]", float, double) {
  using T = TestType;
  std::uint64_t seed = Catch::rngSeed() + 909;
  for (std::size_t n :
       {7u, 8u, 9u, 15u, 16u, 17u, 31u, 32u, 33u, 63u, 64u, 65u, 127u, 128u, 129u, 257u, 1023u, 2049u}) {
    for (double alpha : {1.05, 1.25, 1.75, 3.0, 8.0}) {
      for (double scale : {0.01, 0.25, 1.0, 4.0}) {
        const std::vector<T> z = gaussian<T>(n, scale, ++seed);
        check_alpha_forward<T>(z, alpha, "gauss" + std::to_string(scale));
        std::vector<T> p(n), q(z);  // in place (the listing output pass copies before zeroing)
        entmax::entmax_bisect(z.data(), p.data(), n, T(alpha));
        entmax::entmax_bisect(q.data(), q.data(), n, T(alpha));
        CHECK(std::memcmp(p.data(), q.data(), n * sizeof(T)) == 0);
        std::vector<T> tied(z);  // a coarse grid: many ties, also at the top
        for (auto& v : tied) v = static_cast<T>(std::round(static_cast<double>(v) * 4 / scale) * scale / 4);
        check_alpha_forward<T>(tied, alpha, "tied" + std::to_string(scale));
        std::vector<T> masked(z);
        for (std::size_t i = 1; i < n; i += 3) masked[i] = -std::numeric_limits<T>::infinity();
        check_alpha_forward<T>(masked, alpha, "masked" + std::to_string(scale));
      }
    }
  }
}

TEST_CASE("entmax_bisect at n = 1e6 (float, general power)", "[entmax_bisect][large]") {
  check_alpha_forward<float>(gaussian<float>(1000000, 1.0, Catch::rngSeed() + 7), 1.75, "gauss1");
  check_alpha_forward<float>(gaussian<float>(1000000, 0.25, Catch::rngSeed() + 8), 1.25, "gauss0.25");
}

TEMPLATE_TEST_CASE("entmax_bisect at alpha = 2 and 1.5 equals sparsemax and entmax15", "[entmax_bisect]",
                   float, double) {
  using T = TestType;
  std::uint64_t seed = Catch::rngSeed() + 202;
  for (std::size_t n : {1u, 2u, 3u, 7u, 16u, 17u, 100u, 1000u, 4096u}) {
    for (const auto& f : entmax_test::families()) {
      const std::vector<T> z = make_row<T>(f, n, ++seed);
      std::vector<T> a(n), b(n);
      INFO(f << " n=" << n << " seed=" << Catch::rngSeed());
      entmax::entmax_bisect(z.data(), a.data(), n, T(2));
      entmax::sparsemax(z.data(), b.data(), n);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(static_cast<ld>(a[i]) - b[i]) <= 8 * eps<T>());
      CHECK(bad == 0);
      entmax::entmax_bisect(z.data(), a.data(), n, T(1.5));
      entmax::entmax15(z.data(), b.data(), n);
      bad = 0;
      for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(static_cast<ld>(a[i]) - b[i]) <= 8 * eps<T>());
      CHECK(bad == 0);
    }
  }
}

TEMPLATE_TEST_CASE("entmax_bisect invariants: shift, permutation, ties, n = 1, in-place", "[entmax_bisect]",
                   float, double) {
  using T = TestType;
  std::mt19937_64 g(Catch::rngSeed() + 303);
  for (double alpha : kAlphas) {
    INFO("alpha=" << alpha << " seed=" << Catch::rngSeed());
    const T a = T(alpha);
    for (std::size_t n : {1u, 2u, 5u, 16u, 33u, 300u}) {
      // Shift invariance, bitwise: scores are multiples of 1/64 in [-8, 8], shift by 1024.
      std::vector<T> z(n), zs(n), p(n), ps(n);
      for (std::size_t i = 0; i < n; ++i) {
        z[i] = static_cast<T>(static_cast<double>(static_cast<int>(g() % 1025) - 512) / 64.0);
        zs[i] = z[i] + T(1024);
      }
      entmax::entmax_bisect(z.data(), p.data(), n, a);
      entmax::entmax_bisect(zs.data(), ps.data(), n, a);
      CHECK(std::memcmp(p.data(), ps.data(), n * sizeof(T)) == 0);

      // Permutation equivariance within 4 ulp.
      std::vector<std::size_t> perm(n);
      std::iota(perm.begin(), perm.end(), std::size_t{0});
      std::shuffle(perm.begin(), perm.end(), g);
      const std::vector<T> zr = gaussian<T>(n, 1.0, g());
      std::vector<T> zp(n), pr(n), pp(n);
      for (std::size_t i = 0; i < n; ++i) zp[i] = zr[perm[i]];
      entmax::entmax_bisect(zr.data(), pr.data(), n, a);
      entmax::entmax_bisect(zp.data(), pp.data(), n, a);
      ld worst = 0;
      T worst_p = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const ld d = ulps(pp[i], pr[perm[i]]);
        if (d > worst) worst = d, worst_p = pr[perm[i]];
      }
      INFO("n=" << n << " worst at p=" << worst_p
                << ", row max p=" << *std::max_element(pr.begin(), pr.end()));
      CHECK(worst <= 4);

      // In-place equals out-of-place, bitwise.
      std::vector<T> inplace = zr;
      entmax::entmax_bisect(inplace.data(), inplace.data(), n, a);
      CHECK(std::memcmp(inplace.data(), pr.data(), n * sizeof(T)) == 0);

      // All equal: 1/n each (1 ulp); n = 1 gives exactly 1.
      std::vector<T> eq(n, T(0.375)), pe(n);
      const auto st = entmax::entmax_bisect(eq.data(), pe.data(), n, a);
      CHECK(st.support == n);
      for (std::size_t i = 0; i < n; ++i) CHECK(ulps(pe[i], static_cast<T>(1.0L / static_cast<ld>(n))) <= 1);
      if (n == 1) CHECK(pe[0] == T(1));
    }
    // Planted ties get equal mass, bitwise; the top pair gets the most.
    std::vector<T> z = gaussian<T>(64, 0.5, g()), p(64);
    z[3] = z[40] = T(3);
    z[7] = z[8] = z[9] = T(2.5);
    entmax::entmax_bisect(z.data(), p.data(), z.size(), a);
    CHECK(p[3] == p[40]);
    CHECK(p[7] == p[8]);
    CHECK(p[8] == p[9]);
    CHECK(p[3] > p[7]);
  }
}

TEMPLATE_TEST_CASE("entmax_bisect permutation equivariance at large alpha, boundary entries included",
                   "[entmax_bisect]", float, double) {
  // For α ≫ 2, p = (d − τ)^{1/(α−1)} turns a relative error of 1e-9 in τ into a 10 % error of a
  // support entry ten times below the typical mass: the threshold must be found to rounding
  // noise for any order of the scores, float rows too.
  using T = TestType;
  std::mt19937_64 g(Catch::rngSeed() + 309);
  for (double alpha : {6.0, 10.652, 16.0}) {
    const T a = T(alpha);
    for (int rep = 0; rep < 20; ++rep) {
      const std::size_t n = 400 + g() % 600;
      std::vector<T> z(n);
      for (T& v : z) {
        const int code = static_cast<int>(g() % 252) + 4;
        v = g() % 16 == 0 ? -std::numeric_limits<T>::infinity() : std::ldexp(T(code - 128), -100);
      }
      std::vector<T> zr(z.rbegin(), z.rend()), p(n), pr(n);
      entmax::entmax_bisect(z.data(), p.data(), n, a);
      entmax::entmax_bisect(zr.data(), pr.data(), n, a);
      std::size_t bad = 0;
      for (std::size_t i = 0; i < n; ++i) bad += !(std::fabs(p[i] - pr[n - 1 - i]) <= 4 * eps<T>());
      INFO("alpha=" << alpha << " n=" << n << " rep=" << rep << " seed=" << Catch::rngSeed());
      CHECK(bad == 0);
    }
  }
}

TEMPLATE_TEST_CASE("entmax_bisect special rows: -inf, all -inf, NaN, +inf, empty", "[entmax_bisect]", float,
                   double) {
  using T = TestType;
  const T inf = std::numeric_limits<T>::infinity();
  std::mt19937_64 g(Catch::rngSeed() + 404);
  for (double alpha : kAlphas) {
    const T a = T(alpha);
    INFO("alpha=" << alpha << " seed=" << Catch::rngSeed());
    for (std::size_t n : {1u, 3u, 8u, 17u, 100u}) {
      // Masked entries are exactly 0; the rest equals the map on the compacted row (4 ulp).
      std::vector<T> z = gaussian<T>(n, 1.0, g()), p(n);
      std::vector<T> kept;
      for (std::size_t i = 0; i < n; ++i) {
        if (i % 3 == 1)
          z[i] = -inf;
        else
          kept.push_back(z[i]);
      }
      entmax::entmax_bisect(z.data(), p.data(), n, a);
      std::vector<T> pk(kept.size());
      entmax::entmax_bisect(kept.data(), pk.data(), kept.size(), a);
      std::size_t j = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (i % 3 == 1) {
          CHECK(p[i] == T(0));
        } else {
          CHECK(ulps(p[i], pk[j++]) <= 4);
        }
      }
      // All -inf: zeros, support 0; zero gradients, zero α-gradient.
      std::vector<T> m(n, -inf), pm(n, T(5)), dp = gaussian<T>(n, 1.0, g()), dz(n, T(5));
      const auto s = entmax::entmax_bisect(m.data(), pm.data(), n, a);
      CHECK(s.support == 0);
      CHECK(s.max == -inf);
      for (T v : pm) CHECK(v == T(0));
      entmax::entmax_bisect_backward(pm.data(), dp.data(), dz.data(), n, a);
      for (T v : dz) CHECK(v == T(0));
      CHECK(entmax::entmax_alpha_grad(pm.data(), dp.data(), n, a) == T(0));
      std::vector<T> q(n, T(5));
      entmax::entmax_from_stats(m.data(), s, q.data(), n, a);
      for (T v : q) CHECK(v == T(0));
      // NaN or +inf anywhere: NaN row, whatever the position (SIMD lane).
      for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
        for (T bad : {std::numeric_limits<T>::quiet_NaN(), inf}) {
          std::vector<T> zb = gaussian<T>(n, 1.0, g()), pb(n);
          zb[pos] = bad;
          const auto sb = entmax::entmax_bisect(zb.data(), pb.data(), n, a);
          CHECK(sb.support == 0);
          for (T v : pb) CHECK(std::isnan(v));
          // ... and its gradient is NaN too, for every alpha (never finite-looking garbage).
          std::vector<T> dpb(n, T(1)), dzb(n, T(0));
          dpb[0] = T(2);
          entmax::entmax_bisect_backward(pb.data(), dpb.data(), dzb.data(), n, a);
          for (T v : dzb) CHECK(std::isnan(v));
        }
      }
    }
    // n = 0 is a no-op.
    T dummy = T(9);
    const auto s0 = entmax::entmax_bisect(&dummy, &dummy, 0, a);
    CHECK(s0.support == 0);
    CHECK(dummy == T(9));
  }
}

TEMPLATE_TEST_CASE("entmax_bisect rejects bad alpha before writing", "[entmax_bisect]", float, double) {
  using T = TestType;
  const std::vector<T> z = {T(0.5), T(-1), T(2)};
  for (T bad :
       {T(1), T(0.5), T(-2), std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    std::vector<T> p(3, T(42));
    CHECK_THROWS_AS(entmax::entmax_bisect(z.data(), p.data(), 3, bad), std::domain_error);
    CHECK_THROWS_AS(entmax::entmax_bisect_backward(z.data(), z.data(), p.data(), 3, bad), std::domain_error);
    CHECK_THROWS_AS(
        entmax::entmax_from_stats(z.data(), entmax::RowStats<T>{T(2), T(-1), 1}, p.data(), 3, bad),
        std::domain_error);
    CHECK_THROWS_AS(entmax::entmax_alpha_grad(z.data(), z.data(), 3, bad), std::domain_error);
    for (T v : p) CHECK(v == T(42));
  }
  std::vector<T> p(3, T(42));
  CHECK_THROWS_WITH(entmax::entmax_bisect(z.data(), p.data(), 3, T(1)),
                    Catch::Matchers::StartsWith("entmax::entmax_bisect: alpha must be > 1 (got 1)") &&
                        Catch::Matchers::Contains("softmax"));
}

TEMPLATE_TEST_CASE("entmax_bisect_backward vs reference, finite differences and the Jacobian's structure",
                   "[entmax_bisect][backward]", float, double) {
  using T = TestType;
  std::mt19937_64 g(Catch::rngSeed() + 505);
  for (double alpha : kAlphas) {
    const T a = T(alpha);
    for (std::size_t n : {1u, 2u, 3u, 7u, 16u, 17u, 33u, 200u}) {
      INFO("alpha=" << alpha << " n=" << n << " seed=" << Catch::rngSeed());
      const std::vector<T> z = gaussian<T>(n, 1.0, g());
      std::vector<T> p(n), dp = gaussian<T>(n, 1.0, g()), dz(n);
      entmax::entmax_bisect(z.data(), p.data(), n, a);
      entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), n, a);
      // Against the long-double formula on the same p.
      const std::vector<ld> r = ref_alpha::entmax_alpha_backward(widen(p), widen(dp), static_cast<ld>(a));
      ld scale = 0, sum = 0, abs_sum = 0;
      for (std::size_t i = 0; i < n; ++i) scale = std::max(scale, std::fabs(r[i]));
      std::size_t bad = 0;
      for (std::size_t i = 0; i < n; ++i) {
        bad += !(std::fabs(static_cast<ld>(dz[i]) - r[i]) <= 16 * eps<T>() * std::max<ld>(scale, 1));
        bad += p[i] == T(0) && dz[i] != T(0);
        sum += dz[i];
        abs_sum += std::fabs(static_cast<ld>(dz[i]));
      }
      CHECK(bad == 0);
      CHECK(std::fabs(sum) <= 16 * eps<T>() * abs_sum);

      // dp = c·1 gives dz = 0 (relative to what dp = c·e_i would give).
      std::vector<T> dc(n, T(0.75)), dzc(n);
      entmax::entmax_bisect_backward(p.data(), dc.data(), dzc.data(), n, a);
      ld umax = 0;
      for (T v : p)
        if (v > T(0)) umax = std::max(umax, std::pow(static_cast<ld>(v), 2 - static_cast<ld>(a)));
      for (T v : dzc) CHECK(std::fabs(static_cast<ld>(v)) <= 16 * eps<T>() * 0.75L * umax);

      // Jacobian symmetric: column j by dp = e_j.
      if (n <= 33) {
        std::vector<std::vector<T>> J(n, std::vector<T>(n));
        for (std::size_t j = 0; j < n; ++j) {
          std::vector<T> e(n, T(0));
          e[j] = T(1);
          entmax::entmax_bisect_backward(p.data(), e.data(), J[j].data(), n, a);
        }
        for (std::size_t i = 0; i < n; ++i) {
          ld col = 0;
          for (std::size_t k = 0; k < n; ++k) col += std::fabs(static_cast<ld>(J[i][k]));
          for (std::size_t j = 0; j < i; ++j) {
            CHECK(std::fabs(static_cast<ld>(J[i][j]) - J[j][i]) <= 16 * eps<T>() * std::max<ld>(col, 1e-30L));
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("entmax_bisect_backward: dp = c·1 gives dz = 0 on long, nearly uniform rows",
                   "[entmax_bisect][backward]", float, double) {
  // Hundreds of comparable weights: a plain running Σw·dp / Σw drifts from c by ~nε, which
  // the output multiplies by u; the sums must carry more than T (and more than double for
  // double rows) for dz to vanish to the rounding of each entry.
  using T = TestType;
  std::mt19937_64 g(Catch::rngSeed() + 517);
  for (double alpha : {1.25, 1.75, 2.5, 3.15, 4.0}) {
    const T a = T(alpha);
    for (std::size_t n : {415u, 1000u, 4096u}) {
      const std::vector<T> z = gaussian<T>(n, 1e-3, g());
      std::vector<T> p(n);
      entmax::entmax_bisect(z.data(), p.data(), n, a);
      for (T c : {T(0.1), T(-1234.567), T(3e-7)}) {
        INFO("alpha=" << alpha << " n=" << n << " c=" << c << " seed=" << Catch::rngSeed());
        std::vector<T> dp(n, c), dz(n);
        entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), n, a);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const ld u = p[i] > T(0) ? std::pow(static_cast<ld>(p[i]), 2 - static_cast<ld>(a)) : 0;
          bad += !(std::fabs(static_cast<ld>(dz[i])) <= 2 * eps<T>() * u * std::fabs(static_cast<ld>(c)));
        }
        CHECK(bad == 0);
      }
    }
  }
}

TEMPLATE_TEST_CASE("entmax_bisect_backward equals central finite differences off the support boundary",
                   "[entmax_bisect][backward]", float, double) {
  using T = TestType;
  const ld rel = sizeof(T) == 4 ? 1e-4L : 1e-6L;
  std::mt19937_64 g(Catch::rngSeed() + 606);
  for (double alpha : {1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0}) {
    const T a = T(alpha);
    for (std::size_t n : {3u, 10u, 40u}) {
      INFO("alpha=" << alpha << " n=" << n << " seed=" << Catch::rngSeed());
      const std::vector<T> z = gaussian<T>(n, 1.0, g());
      const std::vector<T> dp = gaussian<T>(n, 1.0, g());
      std::vector<T> p(n), dz(n);
      const auto st = entmax::entmax_bisect(z.data(), p.data(), n, a);
      entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), n, a);
      // L(z) = <dp, p(z)> by the long-double reference; skip coordinates near the boundary.
      const ld am1 = static_cast<ld>(a) - 1;
      const ld h = 1e-6L;
      ld scale = 0;
      std::vector<ld> fd(n, 0);
      std::vector<bool> use(n, false);
      for (std::size_t i = 0; i < n; ++i) {
        const ld margin = std::fabs(am1 * (static_cast<ld>(z[i]) - st.max) - st.tau);
        if (margin < 1e-3L) continue;
        use[i] = true;
        auto L = [&](ld delta) {
          std::vector<ld> zz(z.begin(), z.end());
          zz[i] += delta;
          const auto r = ref_alpha::entmax_alpha(zz.data(), n, static_cast<ld>(a));
          ld s = 0;
          for (std::size_t k = 0; k < n; ++k) s += static_cast<ld>(dp[k]) * r.p[k];
          return s;
        };
        fd[i] = (L(h) - L(-h)) / (2 * h);
        scale = std::max(scale, std::fabs(fd[i]));
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (use[i]) CHECK(std::fabs(static_cast<ld>(dz[i]) - fd[i]) <= rel * std::max<ld>(scale, 1e-3L));
      }
    }
  }
}

TEMPLATE_TEST_CASE("entmax_alpha_grad matches the formula and finite differences in alpha",
                   "[entmax_bisect][alpha_grad]", float, double) {
  using T = TestType;
  const bool is_float = sizeof(T) == 4;
  const std::vector<double> alphas =
      is_float ? std::vector<double>{1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0}
               : std::vector<double>{1.0001, 1.001, 1.01, 1.1, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0};
  const ld rel = is_float ? 1e-4L : 1e-6L;
  std::mt19937_64 g(Catch::rngSeed() + 707);
  std::size_t used = 0, total = 0;
  for (double alpha : alphas) {
    const T a = T(alpha);
    const ld al = static_cast<ld>(a);
    for (std::size_t n : {2u, 5u, 16u, 50u}) {
      for (double scale : {0.5, 2.0}) {
        INFO("alpha=" << alpha << " n=" << n << " scale=" << scale << " seed=" << Catch::rngSeed());
        const std::vector<T> z = gaussian<T>(n, scale, g());
        const std::vector<T> dp = gaussian<T>(n, 1.0, g());
        std::vector<T> p(n);
        entmax::entmax_bisect(z.data(), p.data(), n, a);
        ++total;
        const ld got = entmax::entmax_alpha_grad(p.data(), dp.data(), n, a);
        // L(α) = <dp, p_α(z)> with the long-double reference, five-point stencil.
        auto L = [&](ld x) {
          const auto r = ref_alpha::entmax_alpha(z.data(), n, x);
          ld s = 0;
          for (std::size_t k = 0; k < n; ++k) s += static_cast<ld>(dp[k]) * r.p[k];
          return s;
        };
        const ld h = std::min(1e-6L, (al - 1) / 100);
        // Away from support changes: the stencil's points must share the support of p_α.
        if (ref_alpha::entmax_alpha(z.data(), n, al - 2 * h).support !=
                ref_alpha::entmax_alpha(z.data(), n, al).support ||
            ref_alpha::entmax_alpha(z.data(), n, al + 2 * h).support !=
                ref_alpha::entmax_alpha(z.data(), n, al).support)
          continue;
        ++used;
        const ld fd = (8 * (L(al + h) - L(al - h)) - (L(al + 2 * h) - L(al - 2 * h))) / (12 * h);
        // The same formula in long double on the reference p.
        const auto r = ref_alpha::entmax_alpha(z.data(), n, al);
        const ld formula = ref_alpha::entmax_alpha_grad(r.p, widen(dp), al);
        INFO("got " << static_cast<double>(got) << " fd " << static_cast<double>(fd) << " formula "
                    << static_cast<double>(formula));
        CHECK(std::fabs(formula - fd) <= 1e-6L * std::max(std::fabs(fd), 1e-3L));
        CHECK(std::fabs(got - fd) <= rel * std::max(std::fabs(fd), 1e-3L));
      }
    }
  }
  CHECK(used * 4 >= total * 3);  // most rows are away from a support change
}

TEMPLATE_TEST_CASE("entmax_bisect for alpha > 2: no overflow with tiny probabilities", "[entmax_bisect]",
                   float, double) {
  using T = TestType;
  for (double alpha : {2.5, 3.0, 4.0, 6.0}) {
    const T a = T(alpha);
    INFO("alpha=" << alpha);
    // Two scores at the top, one planted just above the threshold: a tiny support probability.
    std::vector<T> z = {T(1), T(1), T(0), T(-3)};
    std::vector<T> p(4), dp = {T(0.3), T(-0.2), T(0.9), T(0.1)}, dz(4);
    // Choose z[2] so that d_2 − τ is tiny: τ for the pair is found by the forward itself, then z[2]
    // is moved to just above it.
    const auto s = entmax::entmax_bisect(z.data(), p.data(), 2, a);
    z[2] = static_cast<T>(static_cast<ld>(s.max) + static_cast<ld>(s.tau) / (static_cast<ld>(a) - 1)) +
           T(64) * std::numeric_limits<T>::epsilon();
    const auto s2 = entmax::entmax_bisect(z.data(), p.data(), 4, a);
    for (T v : p) CHECK(std::isfinite(v));
    CHECK(s2.support >= 2);
    entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), 4, a);
    for (T v : dz) CHECK(std::isfinite(v));
    CHECK(std::isfinite(entmax::entmax_alpha_grad(p.data(), dp.data(), 4, a)));
    check_alpha_forward<T>(z, alpha, "tiny support probability");
  }
}

TEST_CASE("entmax_bisect matches the golden vectors (PyTorch reference)", "[entmax_bisect][golden]") {
  const auto records =
      entmax_test::read_golden(std::string(ENTMAX_TEST_DATA_DIR) + "/golden_normalizers.txt");
  std::size_t seen = 0;
  for (const auto& rec : records) {
    if (rec.op != "entmax_bisect") continue;
    ++seen;
    const double alpha = rec.number("alpha");
    const std::vector<double>& z = rec.vec("z");
    const std::vector<double>& dp = rec.vec("dp");
    const std::size_t n = z.size();
    INFO(rec.describe());
    std::vector<double> p(n), dz(n);
    entmax::entmax_bisect(z.data(), p.data(), n, alpha);
    entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), n, alpha);
    const double da = entmax::entmax_alpha_grad(p.data(), dp.data(), n, alpha);
    // The golden file comes from 100 float64 halvings (agreeing with exact solutions to 5e-14).
    const std::vector<double>& gp = rec.vec("p");
    const std::vector<double>& gdz = rec.vec("dz");
    double pscale = 0, dzscale = 0;
    for (std::size_t i = 0; i < n; ++i) dzscale = std::max(dzscale, std::fabs(gdz[i]));
    for (std::size_t i = 0; i < n; ++i) pscale = std::max(pscale, std::fabs(gp[i]));
    // The reference forms (α−1)·z before subtracting the max: its rounding grows with |z|
    // (tag large_offset adds 1000).
    double zscale = 1;
    for (double v : z)
      if (std::isfinite(v)) zscale = std::max(zscale, std::fabs(v));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i) {
      bad += !(std::fabs(p[i] - gp[i]) <= 1e-13 * zscale);
      bad += !(std::fabs(dz[i] - gdz[i]) <= 1e-12 * zscale * std::max(1.0, dzscale));
    }
    CHECK(bad == 0);
    CHECK(std::fabs(da - rec.scalar("dalpha")) <= 1e-10 * std::max(1.0, std::fabs(rec.scalar("dalpha"))));
  }
  CHECK(seen >= 7 * 50);
}
