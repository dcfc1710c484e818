#include <entmax/asentmax.hpp>
#include <entmax/normalizer.hpp>

#include "reference/alpha.hpp"
#include "reference/scaled.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using ld = long double;

template <class T>
constexpr double eps() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

template <class T>
std::vector<T> gaussian_row(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> nd(0.0, scale);
  std::vector<T> z(n);
  for (auto& v : z) v = static_cast<T>(nd(rng));
  return z;
}

// Sizes around SIMD widths 4, 8, 16 and a large one.
const std::vector<std::size_t> kSizes = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 20000};

// Reference p = α-entmax(s_T · z) on exactly the scaled input the kernel sees (s rounded to T,
// s·z rounded to T), so the comparison isolates the map.
template <class T>
std::vector<ld> ref_forward_rounded(const std::vector<T>& z, T s, ld alpha) {
  std::vector<ld> zs(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) zs[i] = static_cast<ld>(static_cast<T>(s * z[i]));
  return ref_scaled::entmax(zs, alpha);
}

// L(θ) = ⟨dp, p(θ)⟩ with p from the long-double reference, for finite differences.
ld ref_objective(const std::vector<double>& z, const std::vector<double>& dp, ld alpha, ld beta, ld gamma,
                 ld delta, std::size_t npos, std::size_t* support = nullptr) {
  const ld s = ref_scaled::asentmax_scale(beta, gamma, delta, npos);
  const auto p = ref_scaled::entmax(ref_scaled::scaled(z.data(), z.size(), s), alpha);
  if (support) *support = ref_scaled::support(p);
  return ref_scaled::dot(dp, p);
}

bool rel_close(double got, double want, double rel, double floor) {
  return std::fabs(got - want) <= rel * std::fabs(want) + floor;
}

}  // namespace

TEST_CASE("asentmax_scale and its partials match the formula", "[asentmax]") {
  for (std::size_t npos : {2u, 3u, 10u, 1000u, 1000000u}) {
    for (double beta : {0.0, 0.3, 1.7}) {
      for (double gamma : {-1.9, -0.5, 0.0, 0.8, 1.99}) {
        const ld want = ref_scaled::asentmax_scale(beta, gamma, 1.0L, npos);
        CHECK(rel_close(entmax::asentmax_scale(beta, gamma, 1.0, npos), static_cast<double>(want),
                        4 * eps<double>(), 0));
        CHECK(rel_close(entmax::asentmax_scale(float(beta), float(gamma), 1.0f, npos),
                        static_cast<double>(want), 2 * eps<float>(), 0));
        // Partials against central differences of the long-double formula.
        const auto g = entmax::asentmax_scale_grad(beta, gamma, 1.0, npos);
        const ld h = 1e-7L;
        const ld fb = (ref_scaled::asentmax_scale(beta + h, gamma, 1, npos) -
                       ref_scaled::asentmax_scale(beta - h, gamma, 1, npos)) /
                      (2 * h);
        const ld fg = (ref_scaled::asentmax_scale(beta, gamma + h, 1, npos) -
                       ref_scaled::asentmax_scale(beta, gamma - h, 1, npos)) /
                      (2 * h);
        CHECK(rel_close(g.ds_dbeta, static_cast<double>(fb), 1e-9, 1e-12));
        CHECK(rel_close(g.ds_dgamma, static_cast<double>(fg), 1e-9, 1e-12));
        CHECK(g.ds_ddelta == 1.0);
      }
    }
  }
}

TEST_CASE("asentmax matches the golden vectors (float64)", "[asentmax][golden]") {
  const auto recs =
      ref_scaled::read_golden(std::string(ENTMAX_TEST_DATA_DIR) + "/golden_normalizers.txt", "asentmax");
  REQUIRE(recs.size() >= 40);
  for (const auto& r : recs) {
    const std::size_t n = static_cast<std::size_t>(r.field("n"));
    const double alpha = r.field("alpha"), beta = r.field("beta"), gamma = r.field("gamma"),
                 delta = r.field("delta");
    const std::size_t npos = static_cast<std::size_t>(r.field("npos"));
    INFO("n=" << n << " tag=" << r.fields.at("tag") << " beta=" << beta << " gamma=" << gamma
              << " npos=" << npos);
    const auto& z = r.data.at("z");
    const auto& pg = r.data.at("p");
    const auto& dp = r.data.at("dp");
    const auto& dzg = r.data.at("dz");
    REQUIRE(z.size() == n);
    std::vector<double> p(n), dz(n);
    const auto st = entmax::asentmax(z.data(), p.data(), n, alpha, beta, gamma, delta, npos);
    const auto g = entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, beta, gamma,
                                             delta, npos);
    // The scaled row s·z reaches |s z| ≈ 1000 s (large_offset) where rounding of the shift is
    // ε·|s z|; the golden values carry the same kind of rounding.
    const double s = entmax::asentmax_scale(beta, gamma, delta, npos);
    double zmax = 1;
    for (double v : z)
      if (std::isfinite(v)) zmax = std::max(zmax, std::fabs(s * v));
    const double tol_p = 16 * eps<double>() * zmax;
    std::size_t nz = 0;
    double sum_dp = 0;
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(std::fabs(p[i] - pg[i]) <= tol_p);
      if (pg[i] == 0) CHECK(p[i] == 0.0);
      nz += p[i] != 0;
      sum_dp += std::fabs(dp[i]);
    }
    CHECK(st.support == nz);
    const double tol_dz = 16 * eps<double>() * zmax * s * sum_dp;
    for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(dz[i] - dzg[i]) <= tol_dz);
    // dβ = ⟨dz_inner, z⟩ L^γ: the dot product's rounding scales with Σ|dz_inner||z|.
    double mag = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (std::isfinite(z[i])) mag += std::fabs(dzg[i] / s * z[i]);
    const auto sg = entmax::asentmax_scale_grad(beta, gamma, delta, npos);
    CHECK(std::fabs(g.dbeta - r.data.at("dbeta")[0]) <=
          64 * eps<double>() * zmax * (mag + 1e-300) * sg.ds_dbeta);
    CHECK(std::fabs(g.dgamma - r.data.at("dgamma")[0]) <=
          64 * eps<double>() * zmax * (mag + 1e-300) * std::fabs(sg.ds_dgamma));
    CHECK(g.ddelta == g.ds);
  }
}

TEMPLATE_TEST_CASE("asentmax agrees with a long-double reference", "[asentmax]", float, double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 101);
  std::uniform_real_distribution<double> ub(0.0, 2.0), ug(-1.9, 1.9);
  for (double alpha : {1.5, 1.25, 2.0}) {
    for (std::size_t n : kSizes) {
      for (double zscale : {1.0, 0.25}) {
        INFO("alpha=" << alpha << " n=" << n << " zscale=" << zscale);
        const auto z = gaussian_row<T>(rng, n, zscale);
        const auto dp = gaussian_row<T>(rng, n, 1.0);
        const T beta = static_cast<T>(ub(rng)), gamma = static_cast<T>(ug(rng));
        const std::size_t npos = n + 1;
        std::vector<T> p(n), dz(n);
        const auto st = entmax::asentmax(z.data(), p.data(), n, T(alpha), beta, gamma, T(1), npos);
        const T s = entmax::asentmax_scale(beta, gamma, T(1), npos);
        const auto pr = ref_forward_rounded(z, s, alpha);
        ld sum = 0;
        std::size_t nz = 0;
        for (std::size_t i = 0; i < n; ++i) {
          CHECK(std::fabs(static_cast<double>(p[i]) - static_cast<double>(pr[i])) <= 16 * eps<T>());
          sum += static_cast<ld>(p[i]);
          nz += p[i] != T(0);
        }
        CHECK(static_cast<double>(std::fabs(sum - 1)) <= (std::is_same_v<T, float> ? 4 : 16) * eps<T>());
        CHECK(st.support == nz);

        const auto g = entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, T(alpha), beta,
                                                 gamma, T(1), npos);
        std::vector<ld> dpl(dp.begin(), dp.end());
        const auto dzi = ref_alpha::entmax_alpha_backward(pr, dpl, alpha);
        double sdp = 0, mag = 0;
        ld ds_ref = 0;
        for (std::size_t i = 0; i < n; ++i) {
          sdp += std::fabs(static_cast<double>(dp[i]));
          mag += std::fabs(static_cast<double>(dzi[i] * z[i]));
          ds_ref += dzi[i] * static_cast<ld>(z[i]);
        }
        const double sd = static_cast<double>(s);
        double dpmax = 0;
        for (T v : dp) dpmax = std::max(dpmax, std::fabs(static_cast<double>(v)));
        // dz_i = s·u_i (dp_i − c) with u ≤ 1 and c a weighted mean of dp: errors are ε-relative
        // to |dp_i| + |c| ≤ |dp_i| + max|dp|.
        for (std::size_t i = 0; i < n; ++i)
          CHECK(std::fabs(static_cast<double>(dz[i]) - sd * static_cast<double>(dzi[i])) <=
                16 * eps<T>() * sd * (std::fabs(static_cast<double>(dp[i])) + dpmax));
        // ds sums n products; its rounding is bounded by the size of the products.
        CHECK(std::fabs(static_cast<double>(g.ds) - static_cast<double>(ds_ref)) <=
              16 * eps<T>() * (sdp + mag));
      }
    }
  }
}

TEST_CASE("asentmax dbeta, dgamma, ddelta and dz equal central finite differences", "[asentmax][gradient]") {
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 7);
  std::uniform_real_distribution<double> ub(0.05, 2.0), ug(-1.9, 1.9), ud(0.5, 1.5);
  std::size_t checked = 0, total = 0;
  for (double alpha : {1.5, 1.25, 2.0, 3.0}) {
    for (std::size_t n : {2u, 3u, 8u, 17u, 64u}) {
      for (int rep = 0; rep < 4; ++rep) {
        ++total;
        const auto z = gaussian_row<double>(rng, n, 1.0);
        const auto dp = gaussian_row<double>(rng, n, 1.0);
        const double beta = ub(rng), gamma = ug(rng), delta = ud(rng);
        const std::size_t npos = n + 1 + static_cast<std::size_t>(rep) * 37;
        std::vector<double> p(n), dz(n);
        entmax::asentmax(z.data(), p.data(), n, alpha, beta, gamma, delta, npos);
        const auto g = entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, beta,
                                                 gamma, delta, npos);
        const ld h = 1e-6L;
        std::size_t k0 = 0, k1 = 0, k2 = 0;
        ref_objective(z, dp, alpha, beta, gamma, delta, npos, &k0);
        auto fd = [&](int which) {
          ld b1 = beta, b2 = beta, g1 = gamma, g2 = gamma, d1 = delta, d2 = delta;
          (which == 0 ? b1 : which == 1 ? g1 : d1) += h;
          (which == 0 ? b2 : which == 1 ? g2 : d2) -= h;
          const ld lp = ref_objective(z, dp, alpha, b1, g1, d1, npos, &k1);
          const ld lm = ref_objective(z, dp, alpha, b2, g2, d2, npos, &k2);
          return static_cast<double>((lp - lm) / (2 * h));
        };
        const double fb = fd(0);
        const bool same_support_b = k1 == k0 && k2 == k0;
        const double fg = fd(1);
        const bool same_support_g = k1 == k0 && k2 == k0;
        const double fdl = fd(2);
        const bool same_support_d = k1 == k0 && k2 == k0;
        if (!(same_support_b && same_support_g && same_support_d)) continue;  // on a support boundary
        ++checked;
        INFO("alpha=" << alpha << " n=" << n << " beta=" << beta << " gamma=" << gamma << " npos=" << npos);
        // Central differences in long double with h = 1e-6: truncation ~h² ≈ 1e-12 of the scale.
        const double floor = 1e-9;
        CHECK(rel_close(g.dbeta, fb, 1e-6, floor));
        CHECK(rel_close(g.dgamma, fg, 1e-6, floor));
        CHECK(rel_close(g.ddelta, fdl, 1e-6, floor));
        // dz against differences in each score.
        const ld s = ref_scaled::asentmax_scale(beta, gamma, delta, npos);
        for (std::size_t j = 0; j < n; ++j) {
          std::vector<double> zp = z, zm = z;
          zp[j] += 1e-6;
          zm[j] -= 1e-6;
          const ld hp = static_cast<ld>(zp[j]) - static_cast<ld>(z[j]);
          const ld hm = static_cast<ld>(z[j]) - static_cast<ld>(zm[j]);
          const auto pp = ref_scaled::entmax(ref_scaled::scaled(zp.data(), n, s), alpha);
          const auto pm = ref_scaled::entmax(ref_scaled::scaled(zm.data(), n, s), alpha);
          if (ref_scaled::support(pp) != k0 || ref_scaled::support(pm) != k0) continue;
          const double fz =
              static_cast<double>((ref_scaled::dot(dp, pp) - ref_scaled::dot(dp, pm)) / (hp + hm));
          CHECK(rel_close(dz[j], fz, 1e-6, floor));
        }
      }
    }
  }
  CHECK(checked * 2 >= total);  // most draws are away from a support boundary
}

TEMPLATE_TEST_CASE("asentmax: masked entries, fully masked rows, NaN rows", "[asentmax][masking]", float,
                   double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  std::mt19937_64 rng(Catch::rngSeed() + 5);
  for (std::size_t n : {1u, 4u, 9u, 17u, 33u}) {
    INFO("n=" << n);
    // Fully masked: zeros, zero gradients, never NaN.
    std::vector<T> z(n, ninf), p(n, T(7)), dp = gaussian_row<T>(rng, n, 1.0), dz(n, T(7));
    const auto st = entmax::asentmax(z.data(), p.data(), n, T(1.5), T(0.7), T(-0.4), T(1), n + 1);
    CHECK(st.support == 0);
    auto g = entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, T(1.5), T(0.7), T(-0.4),
                                       T(1), n + 1);
    for (std::size_t i = 0; i < n; ++i) {
      CHECK(p[i] == T(0));
      CHECK(dz[i] == T(0));
    }
    CHECK(g.dbeta == T(0));
    CHECK(g.dgamma == T(0));
    CHECK(g.ddelta == T(0));

    // Every other entry masked: masked p and dz are exactly 0, the rest equals the compacted row.
    z = gaussian_row<T>(rng, n, 1.0);
    std::vector<T> zc;
    std::vector<T> dpc;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 2 == 1) {
        z[i] = ninf;
      } else {
        zc.push_back(z[i]);
        dpc.push_back(dp[i]);
      }
    }
    for (T alpha : {T(1.5), T(1.25)}) {
      const std::size_t npos = n + 1;  // the same npos for both: the scale must be the same
      entmax::asentmax(z.data(), p.data(), n, alpha, T(0.9), T(0.6), T(1), npos);
      g = entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, T(0.9), T(0.6), T(1),
                                    npos);
      std::vector<T> pc(zc.size()), dzc(zc.size());
      entmax::asentmax(zc.data(), pc.data(), zc.size(), alpha, T(0.9), T(0.6), T(1), npos);
      const auto gc = entmax::asentmax_backward(zc.data(), pc.data(), dpc.data(), dzc.data(), zc.size(),
                                                alpha, T(0.9), T(0.6), T(1), npos);
      for (std::size_t i = 0, k = 0; i < n; ++i) {
        if (i % 2 == 1) {
          CHECK(p[i] == T(0));
          CHECK(dz[i] == T(0));
        } else {
          CHECK(std::fabs(p[i] - pc[k]) <= 4 * std::numeric_limits<T>::epsilon());
          CHECK(std::fabs(dz[i] - dzc[k]) <=
                16 * std::numeric_limits<T>::epsilon() * (1 + std::fabs(dzc[k])));
          ++k;
        }
      }
      CHECK(std::isfinite(g.dbeta));
      CHECK(std::fabs(g.dbeta - gc.dbeta) <=
            64 * std::numeric_limits<T>::epsilon() * (1 + std::fabs(gc.dbeta)));
      CHECK(std::fabs(g.dgamma - gc.dgamma) <=
            64 * std::numeric_limits<T>::epsilon() * (1 + std::fabs(gc.dgamma)));
    }

    // NaN in an unmasked score: the row is NaN.
    z = gaussian_row<T>(rng, n, 1.0);
    z[n / 2] = std::numeric_limits<T>::quiet_NaN();
    entmax::asentmax(z.data(), p.data(), n, T(1.5), T(1), T(0), T(1), n + 1);
    for (std::size_t i = 0; i < n; ++i) CHECK(std::isnan(p[i]));
  }
}

TEST_CASE("asentmax support shrinks as the temperature drops (beta grows)", "[asentmax]") {
  std::mt19937_64 rng(Catch::rngSeed() + 9);
  const auto z = gaussian_row<double>(rng, 4096, 1.0);
  std::vector<double> p(z.size());
  std::size_t prev = z.size() + 1;
  for (double beta = 0.0; beta <= 4.0; beta += 0.125) {
    const auto st = entmax::asentmax(z.data(), p.data(), z.size(), 1.5, beta, 0.5, 1.0, z.size() + 1);
    CHECK(st.support <= prev);
    prev = st.support;
  }
  CHECK(prev < 200);
}

TEMPLATE_TEST_CASE("asentmax bad input is rejected before any write", "[asentmax][errors]", float, double) {
  using T = TestType;
  std::vector<T> z = {T(1), T(2), T(3)}, p(3, T(-7)), dz(3, T(-7)), dp = {T(1), T(0), T(0)};
  const T nan = std::numeric_limits<T>::quiet_NaN();
  auto unchanged = [&] {
    return std::all_of(p.begin(), p.end(), [](T v) { return v == T(-7); }) &&
           std::all_of(dz.begin(), dz.end(), [](T v) { return v == T(-7); });
  };
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1), T(1), T(0), T(1), 4), std::domain_error);
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, nan, T(1), T(0), T(1), 4), std::domain_error);
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), nan, T(0), T(1), 4), std::domain_error);
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), nan, T(1), 4), std::domain_error);
  CHECK_THROWS_AS(
      entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), std::numeric_limits<T>::infinity(), 4),
      std::domain_error);
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), T(-5), 4),
                  std::domain_error);  // s = -4
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), T(-1), 4),
                  std::domain_error);  // s = 0
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), T(1), 1),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), T(1), 0),
                  std::invalid_argument);
  CHECK_THROWS_AS(
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), 3, T(1.5), T(1), T(0), T(1), 1),
      std::invalid_argument);
  CHECK_THROWS_AS(
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), 3, T(0.5), T(1), T(0), T(1), 4),
      std::domain_error);
  CHECK_THROWS_AS(entmax::asentmax_scale(T(1), T(1000), T(1), 1000000), std::domain_error);  // overflow
  CHECK(unchanged());
  try {
    entmax::asentmax(z.data(), p.data(), 3, T(1), T(1), T(0), T(1), 4);
  } catch (const std::domain_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("asentmax") != std::string::npos);
    CHECK(msg.find("softmax") != std::string::npos);
  }
  try {
    entmax::asentmax(z.data(), p.data(), 3, T(1.5), T(1), T(0), T(1), 1);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("npos must be >= 2 (got 1)") != std::string::npos);
  }
  // Empty rows are no-ops (after the O(1) parameter checks).
  const auto st = entmax::asentmax(z.data(), p.data(), 0, T(1.5), T(1), T(0), T(1), 2);
  CHECK(st.support == 0);
  const auto g =
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), 0, T(1.5), T(1), T(0), T(1), 2);
  CHECK(g.dbeta == T(0));
  CHECK(unchanged());
}

TEMPLATE_TEST_CASE("ASEntmax policy: per-row parameters, sinks, per-head layout", "[asentmax][policy]", float,
                   double) {
  using T = TestType;
  static_assert(entmax::is_row_scaled_v<entmax::ASEntmax<T>>);
  static_assert(!entmax::is_row_scaled_v<entmax::EntmaxAlpha<T>>);
  static_assert(entmax::is_normalizer_v<entmax::EntmaxAlpha<T>, T>);
  static_assert(std::is_same_v<typename entmax::ASEntmax<T>::base_type, entmax::EntmaxAlpha<T>>);
  std::mt19937_64 rng(Catch::rngSeed() + 13);
  const std::size_t rows = 6, n = 19;
  const std::vector<T> beta = {T(0.1), T(0.5), T(1.0), T(1.5), T(0.0), T(2.0)};
  const std::vector<T> gamma = {T(-1.5), T(-0.3), T(0.0), T(0.4), T(1.0), T(1.9)};
  std::vector<T> dbeta(rows, T(9)), dgamma(rows, T(9)), ddelta(rows, T(9));
  for (T alpha : {T(1.5), T(1.75)}) {
    entmax::ASEntmax<T> pol(beta.data(), gamma.data(), rows, alpha, T(1));
    pol.set_gradient_sinks(dbeta.data(), dgamma.data(), ddelta.data());
    CHECK(pol.accepts_rows(rows));
    CHECK_FALSE(pol.accepts_rows(rows + 1));
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t npos = 2 + 3 * r;
      const auto z = gaussian_row<T>(rng, n, 1.0);
      const auto dp = gaussian_row<T>(rng, n, 1.0);
      std::vector<T> p1(n), p2(n), dz1(n), dz2(n);
      const auto s1 = pol.forward(r, npos, z.data(), p1.data(), n);
      const auto s2 = entmax::asentmax(z.data(), p2.data(), n, alpha, beta[r], gamma[r], T(1), npos);
      CHECK(s1.support == s2.support);
      CHECK(p1 == p2);
      CHECK(pol.scale(r, npos) == entmax::asentmax_scale(beta[r], gamma[r], T(1), npos));
      const T ds = pol.backward(r, npos, z.data(), p1.data(), dp.data(), dz1.data(), n);
      const auto g = entmax::asentmax_backward(z.data(), p2.data(), dp.data(), dz2.data(), n, alpha, beta[r],
                                               gamma[r], T(1), npos);
      CHECK(dz1 == dz2);
      CHECK(ds == g.ds);
      CHECK(dbeta[r] == g.dbeta);
      CHECK(dgamma[r] == g.dgamma);
      CHECK(ddelta[r] == g.ddelta);
      // In place: z and p alias.
      std::vector<T> zp = z;
      pol.forward(r, npos, zp.data(), zp.data(), n);
      CHECK(zp == p1);
    }
    // A fully masked row (npos < 2): scale 1, zero output and gradients, no throw.
    CHECK(pol.scale(0, 1) == T(1));
    std::vector<T> z(n, -std::numeric_limits<T>::infinity()), p(n, T(3)), dz(n, T(3)), dp(n, T(1));
    pol.forward(2, 1, z.data(), p.data(), n);
    pol.backward(2, 1, z.data(), p.data(), dp.data(), dz.data(), n);
    for (std::size_t i = 0; i < n; ++i) CHECK((p[i] == T(0) && dz[i] == T(0)));
    CHECK((dbeta[2] == T(0) && dgamma[2] == T(0) && ddelta[2] == T(0)));
  }
  // Per head: 2 heads, 3 query rows per head, 2 batches -> 12 rows.
  const std::vector<T> hb = {T(0.5), T(1.5)}, hg = {T(-0.5), T(0.5)};
  auto ph = entmax::ASEntmax<T>::per_head(hb.data(), hg.data(), 2, 3);
  CHECK(ph.accepts_rows(12));
  CHECK_FALSE(ph.accepts_rows(11));
  for (std::size_t r = 0; r < 12; ++r) {
    const std::size_t h = (r / 3) % 2;
    CHECK(ph.param_index(r) == h);
    CHECK(ph.scale(r, 5) == entmax::asentmax_scale(hb[h], hg[h], T(1), 5));
  }
  std::vector<T> per_row(12), per_head(2);
  for (std::size_t r = 0; r < 12; ++r) per_row[r] = static_cast<T>(r);
  entmax::sum_rows_per_head(per_row.data(), 12, 2, 3, per_head.data());
  CHECK(per_head[0] == T(0 + 1 + 2 + 6 + 7 + 8));
  CHECK(per_head[1] == T(3 + 4 + 5 + 9 + 10 + 11));
  // Construction checks.
  const std::vector<T> bad_beta = {T(1), -T(1)}, nan_gamma = {T(0), std::numeric_limits<T>::quiet_NaN()};
  CHECK_THROWS_AS(entmax::ASEntmax<T>(bad_beta.data(), hg.data(), 2), std::domain_error);
  CHECK_THROWS_AS(entmax::ASEntmax<T>(hb.data(), nan_gamma.data(), 2), std::domain_error);
  CHECK_THROWS_AS(entmax::ASEntmax<T>(hb.data(), hg.data(), 2, T(1)), std::domain_error);
  CHECK_THROWS_AS(entmax::ASEntmax<T>(hb.data(), hg.data(), 2, T(1.5), T(-1)), std::domain_error);
  CHECK_THROWS_AS(entmax::ASEntmax<T>::per_head(hb.data(), hg.data(), 2, 0), std::invalid_argument);
}

TEMPLATE_TEST_CASE("EntmaxAlpha dispatches to entmax15 at 1.5 and to entmax_bisect otherwise", "[asentmax]",
                   float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed() + 17);
  for (std::size_t n : {1u, 5u, 16u, 33u, 1000u}) {
    const auto z = gaussian_row<T>(rng, n, 1.0);
    std::vector<T> a(n), b(n);
    entmax::EntmaxAlpha<T>(T(1.5)).forward(z.data(), a.data(), n);
    entmax::entmax15(z.data(), b.data(), n);
    CHECK(a == b);
    entmax::EntmaxAlpha<T>(T(1.3)).forward(z.data(), a.data(), n);
    entmax::entmax_bisect(z.data(), b.data(), n, T(1.3));
    CHECK(a == b);
  }
  CHECK_THROWS_AS(entmax::EntmaxAlpha<T>(T(1)), std::domain_error);
}

TEMPLATE_TEST_CASE("asentmax Jacobian: symmetric, rows sum to zero, constant dp gives zero",
                   "[asentmax][jacobian]", float, double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 19);
  const double e = static_cast<double>(std::numeric_limits<T>::epsilon());
  for (T alpha : {T(1.5), T(1.25), T(2)}) {
    for (std::size_t n : {2u, 5u, 16u, 17u, 40u}) {
      INFO("alpha=" << alpha << " n=" << n);
      const auto z = gaussian_row<T>(rng, n, 0.5);
      const std::size_t npos = n + 1;
      const T beta = T(0.8), gamma = T(0.4);
      std::vector<T> p(n);
      entmax::asentmax(z.data(), p.data(), n, alpha, beta, gamma, T(1), npos);
      // Columns of Jᵀ from unit upstream gradients.
      std::vector<std::vector<T>> jt(n, std::vector<T>(n));
      for (std::size_t j = 0; j < n; ++j) {
        std::vector<T> dp(n, T(0));
        dp[j] = T(1);
        entmax::asentmax_backward(z.data(), p.data(), dp.data(), jt[j].data(), n, alpha, beta, gamma, T(1),
                                  npos);
      }
      for (std::size_t i = 0; i < n; ++i) {
        double row_abs = 0;
        for (std::size_t j = 0; j < n; ++j) row_abs += std::fabs(static_cast<double>(jt[j][i]));
        for (std::size_t j = 0; j < n; ++j)
          CHECK(std::fabs(static_cast<double>(jt[j][i] - jt[i][j])) <= 16 * e * row_abs);
      }
      // Σ_i dz_i = 0 for any dp, and dp = c·1 gives dz = 0 and ds = 0.
      const auto dp = gaussian_row<T>(rng, n, 1.0);
      std::vector<T> dz(n);
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, beta, gamma, T(1), npos);
      long double sum = 0, asum = 0;  // the check's own sum must not add n·ε of error
      for (T v : dz) sum += static_cast<long double>(v), asum += std::fabs(static_cast<long double>(v));
      CHECK(static_cast<double>(std::fabs(sum)) <= 16 * e * static_cast<double>(asum) + 1e-300);
      std::vector<T> cst(n, T(0.7));
      const auto g = entmax::asentmax_backward(z.data(), p.data(), cst.data(), dz.data(), n, alpha, beta,
                                               gamma, T(1), npos);
      const double s = static_cast<double>(entmax::asentmax_scale(beta, gamma, T(1), npos));
      for (T v : dz) CHECK(std::fabs(static_cast<double>(v)) <= 16 * e * 0.7 * s);
      CHECK(std::fabs(static_cast<double>(g.ds)) <= 16 * e * 0.7 * static_cast<double>(n));
    }
  }
}

TEMPLATE_TEST_CASE("asentmax shifts by the row max before scaling: huge finite scores stay valid",
                   "[asentmax][overflow]", float, double) {
  using T = TestType;
  const T big = std::numeric_limits<T>::max();
  const T ninf = -std::numeric_limits<T>::infinity();
  // gamma = 0: s = delta + beta = 1496, so s · z overflows for |z| > max / 1496.
  const T beta = T(1495), gamma = T(0), delta = T(1);
  for (T alpha : {T(1.5), T(1.25), T(2)}) {
    INFO("alpha = " << alpha);
    T z1 = T(-3.58e37), p1 = T(-1);
    entmax::asentmax(&z1, &p1, 1, alpha, beta, gamma, delta, 2);
    CHECK(p1 == T(1));

    std::vector<T> z{big, -big, T(0)}, p(3, T(-1));
    const auto st = entmax::asentmax(z.data(), p.data(), 3, alpha, beta, gamma, delta, 2);
    CHECK(p[0] == T(1));
    CHECK(p[1] == T(0));
    CHECK(p[2] == T(0));
    CHECK(st.support == 1);
    CHECK(st.max == T(0));  // stats of the shifted scaled row s · (z − max z)

    // A tie at the largest value: 1/2 each; the gradient is finite, ds = ⟨g, z − max z⟩ = 0.
    z = {big, big, -big};
    entmax::asentmax(z.data(), p.data(), 3, alpha, beta, gamma, delta, 2);
    CHECK(std::fabs(static_cast<double>(p[0]) - 0.5) <= 2 * eps<T>());
    CHECK(std::fabs(static_cast<double>(p[1]) - 0.5) <= 2 * eps<T>());
    CHECK(p[2] == T(0));
    const std::vector<T> dp{T(1), T(0), T(0)};
    std::vector<T> dz(3, T(-7));
    const auto g =
        entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), 3, alpha, beta, gamma, delta, 2);
    CHECK(std::isfinite(g.ds));
    CHECK(std::fabs(static_cast<double>(g.ds)) <= 1e-6);
    CHECK(std::isfinite(dz[0]));
    CHECK(dz[0] > T(0));
    CHECK(std::fabs(static_cast<double>(dz[0] + dz[1])) <= 4 * eps<T>() * static_cast<double>(dz[0]));
    CHECK(dz[2] == T(0));

    // Masked entries and special rows keep their meaning.
    z = {ninf, big, ninf};
    entmax::asentmax(z.data(), p.data(), 3, alpha, beta, gamma, delta, 2);
    CHECK(p == std::vector<T>{T(0), T(1), T(0)});
    z = {ninf, ninf, ninf};
    entmax::asentmax(z.data(), p.data(), 3, alpha, beta, gamma, delta, 2);
    CHECK(p == std::vector<T>{T(0), T(0), T(0)});
    z = {big, std::numeric_limits<T>::quiet_NaN(), -big};
    entmax::asentmax(z.data(), p.data(), 3, alpha, beta, gamma, delta, 2);
    for (T v : p) CHECK(std::isnan(v));
  }
}
