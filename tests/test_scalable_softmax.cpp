#include <entmax/scalable_softmax.hpp>

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

const std::vector<std::size_t> kSizes = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 1000, 20000};

bool rel_close(double got, double want, double rel, double floor) {
  return std::fabs(got - want) <= rel * std::fabs(want) + floor;
}

}  // namespace

TEMPLATE_TEST_CASE("scalable_softmax agrees with a long-double reference", "[ssmax]", float, double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 41);
  std::uniform_real_distribution<double> us(0.2, 2.0);
  for (std::size_t n : kSizes) {
    for (double zscale : {1.0, 0.25}) {
      INFO("n=" << n << " zscale=" << zscale);
      const auto z = gaussian_row<T>(rng, n, zscale);
      const auto dp = gaussian_row<T>(rng, n, 1.0);
      const T s = static_cast<T>(us(rng));
      const std::size_t npos = n + 1;
      std::vector<T> p(n), dz(n);
      const auto st = entmax::scalable_softmax(z.data(), p.data(), n, s, npos);
      // The reference normalizes exactly the scaled row the kernel sees (c rounded to T, c·z rounded).
      const T c = static_cast<T>(static_cast<double>(s) * std::log(static_cast<double>(npos)));
      std::vector<ld> zs(n);
      for (std::size_t i = 0; i < n; ++i) zs[i] = static_cast<ld>(static_cast<T>(c * z[i]));
      const auto pr = ref_scaled::softmax(zs);
      ld sum = 0;
      std::size_t nz = 0;
      for (std::size_t i = 0; i < n; ++i) {
        CHECK(std::fabs(static_cast<double>(p[i]) - static_cast<double>(pr[i])) <= 16 * eps<T>());
        sum += static_cast<ld>(p[i]);
        nz += p[i] != T(0);
      }
      CHECK(static_cast<double>(std::fabs(sum - 1)) <= (std::is_same_v<T, float> ? 4 : 16) * eps<T>());
      CHECK(st.support == nz);

      const auto g = entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, s, npos);
      std::vector<ld> dpl(dp.begin(), dp.end());
      const auto gi = ref_scaled::softmax_backward(pr, dpl);
      double sdp = 0, mag = 0;
      ld dc_ref = 0;
      for (std::size_t i = 0; i < n; ++i) {
        sdp += std::fabs(static_cast<double>(dp[i]));
        mag += std::fabs(static_cast<double>(gi[i] * z[i]));
        dc_ref += gi[i] * static_cast<ld>(z[i]);
      }
      const double cd = static_cast<double>(c);
      for (std::size_t i = 0; i < n; ++i)
        CHECK(std::fabs(static_cast<double>(dz[i]) - cd * static_cast<double>(gi[i])) <=
              16 * eps<T>() * cd * sdp);
      CHECK(std::fabs(static_cast<double>(g.dscale) - static_cast<double>(dc_ref)) <=
            16 * eps<T>() * (sdp + mag));
      CHECK(rel_close(static_cast<double>(g.ds),
                      static_cast<double>(g.dscale) * std::log(static_cast<double>(npos)), 2 * eps<T>(), 0));
    }
  }
}

TEST_CASE("scalable_softmax ds and dz equal central finite differences", "[ssmax][gradient]") {
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 43);
  std::uniform_real_distribution<double> us(0.2, 2.0);
  for (std::size_t n : {1u, 2u, 3u, 8u, 17u, 64u, 300u}) {
    for (int rep = 0; rep < 3; ++rep) {
      const auto z = gaussian_row<double>(rng, n, 1.0);
      const auto dp = gaussian_row<double>(rng, n, 1.0);
      const double s = us(rng);
      const std::size_t npos = n + 1 + static_cast<std::size_t>(rep) * 100;
      std::vector<double> p(n), dz(n);
      entmax::scalable_softmax(z.data(), p.data(), n, s, npos);
      const auto g = entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, s, npos);
      const ld l = std::log(static_cast<ld>(npos));
      auto objective = [&](ld sv, const std::vector<double>& zz) {
        return ref_scaled::dot(dp, ref_scaled::softmax(ref_scaled::scaled(zz.data(), n, sv * l)));
      };
      const ld h = 1e-6L;
      const double fs = static_cast<double>((objective(s + h, z) - objective(s - h, z)) / (2 * h));
      INFO("n=" << n << " s=" << s << " npos=" << npos);
      CHECK(rel_close(g.ds, fs, 1e-6, 1e-10));
      for (std::size_t j = 0; j < n; ++j) {
        std::vector<double> zp = z, zm = z;
        zp[j] += 1e-6;
        zm[j] -= 1e-6;
        const ld hh = static_cast<ld>(zp[j]) - static_cast<ld>(zm[j]);
        const double fz = static_cast<double>((objective(s, zp) - objective(s, zm)) / hh);
        CHECK(rel_close(dz[j], fz, 1e-6, 1e-10));
      }
    }
  }
}

TEMPLATE_TEST_CASE("scalable_softmax: masking, Jacobian properties, NaN rows", "[ssmax]", float, double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  std::mt19937_64 rng(Catch::rngSeed() + 47);
  for (std::size_t n : {1u, 4u, 9u, 17u, 33u, 257u}) {
    INFO("n=" << n);
    std::vector<T> z(n, ninf), p(n, T(7)), dp = gaussian_row<T>(rng, n, 1.0), dz(n, T(7));
    entmax::scalable_softmax(z.data(), p.data(), n, T(1), n + 1);
    auto g = entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, T(1), n + 1);
    for (std::size_t i = 0; i < n; ++i) CHECK((p[i] == T(0) && dz[i] == T(0)));
    CHECK((g.ds == T(0) && g.dscale == T(0)));

    // Half masked: masked outputs and gradients exactly 0, the rest equals the compacted row.
    z = gaussian_row<T>(rng, n, 1.0);
    std::vector<T> zc, dpc;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 2) {
        z[i] = ninf;
      } else {
        zc.push_back(z[i]);
        dpc.push_back(dp[i]);
      }
    }
    entmax::scalable_softmax(z.data(), p.data(), n, T(0.8), n + 1);
    g = entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, T(0.8), n + 1);
    std::vector<T> pc(zc.size()), dzc(zc.size());
    entmax::scalable_softmax(zc.data(), pc.data(), zc.size(), T(0.8), n + 1);
    const auto gc = entmax::scalable_softmax_backward(zc.data(), pc.data(), dpc.data(), dzc.data(), zc.size(),
                                                      T(0.8), n + 1);
    for (std::size_t i = 0, k = 0; i < n; ++i) {
      if (i % 2) {
        CHECK((p[i] == T(0) && dz[i] == T(0)));
      } else {
        CHECK(std::fabs(p[i] - pc[k]) <= 4 * std::numeric_limits<T>::epsilon());
        ++k;
      }
    }
    CHECK(std::isfinite(g.ds));
    CHECK(std::fabs(g.ds - gc.ds) <= 64 * std::numeric_limits<T>::epsilon() * (1 + std::fabs(gc.ds)));

    // Σ dz = 0 and dp = c·1 gives dz = 0. dz = k·p ⊙ (dp − m) with m = ⟨p, dp⟩ stored in T, so
    // Σ dz carries k·|m|·ε/2 from m's own rounding however m is computed; for a nearly one-hot
    // row Σ|dz| ≪ k·|m|. Bound: 16 ε (Σ|dz| + k·max|dp|), with |m| ≤ max|dp|.
    z = gaussian_row<T>(rng, n, 1.0);
    entmax::scalable_softmax(z.data(), p.data(), n, T(1.3), n + 1);
    entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, T(1.3), n + 1);
    long double sum = 0, asum = 0;  // the check's own sum must not add n·ε of error
    for (T v : dz) sum += static_cast<long double>(v), asum += std::fabs(static_cast<long double>(v));
    double dpmax = 0;
    for (T v : dp) dpmax = std::max(dpmax, std::fabs(static_cast<double>(v)));
    const double k = 1.3 * std::log(double(n + 1));
    CHECK(static_cast<double>(std::fabs(sum)) <= 16 * eps<T>() * (static_cast<double>(asum) + k * dpmax));
    std::vector<T> cst(n, T(0.37));
    entmax::scalable_softmax_backward(z.data(), p.data(), cst.data(), dz.data(), n, T(1.3), n + 1);
    for (T v : dz)
      CHECK(std::fabs(static_cast<double>(v)) <= 16 * eps<T>() * 0.37 * std::log(double(n + 1)) * 1.3);
  }
}

TEMPLATE_TEST_CASE("scalable_softmax bad input is rejected before any write", "[ssmax][errors]", float,
                   double) {
  using T = TestType;
  std::vector<T> z = {T(1), T(2)}, p(2, T(-7)), dz(2, T(-7)), dp = {T(1), T(0)};
  CHECK_THROWS_AS(entmax::scalable_softmax(z.data(), p.data(), 2, T(0), 3), std::domain_error);
  CHECK_THROWS_AS(entmax::scalable_softmax(z.data(), p.data(), 2, T(-1), 3), std::domain_error);
  CHECK_THROWS_AS(entmax::scalable_softmax(z.data(), p.data(), 2, std::numeric_limits<T>::quiet_NaN(), 3),
                  std::domain_error);
  CHECK_THROWS_AS(entmax::scalable_softmax(z.data(), p.data(), 2, T(1), 1), std::invalid_argument);
  CHECK_THROWS_AS(entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), 2, T(1), 0),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::ScalableSoftmax<T>(T(0)), std::domain_error);
  for (T v : p) CHECK(v == T(-7));
  for (T v : dz) CHECK(v == T(-7));
  try {
    entmax::scalable_softmax(z.data(), p.data(), 2, T(-1), 3);
  } catch (const std::domain_error& e) {
    CHECK(std::string(e.what()).find("scalable_softmax: s must be finite and > 0 (got -1)") !=
          std::string::npos);
  }
  const auto st = entmax::scalable_softmax(z.data(), p.data(), 0, T(1), 2);
  CHECK(st.support == 0);
}

TEMPLATE_TEST_CASE("ScalableSoftmax policy: global and per-head s, per-row sinks", "[ssmax][policy]", float,
                   double) {
  using T = TestType;
  static_assert(entmax::is_row_scaled_v<entmax::ScalableSoftmax<T>>);
  std::mt19937_64 rng(Catch::rngSeed() + 53);
  const std::size_t n = 21;
  const std::vector<T> hs = {T(0.5), T(1.0), T(1.7)};
  const std::size_t heads = 3, nq = 4, rows = 2 * heads * nq;
  std::vector<T> ds_rows(rows, T(9));
  auto pol = entmax::ScalableSoftmax<T>::per_head(hs.data(), heads, nq);
  pol.set_gradient_sink(ds_rows.data());
  std::vector<double> want_head(heads, 0.0);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t h = (r / nq) % heads;
    const std::size_t npos = 2 + r % nq;  // causal: query i sees i + 1 keys
    CHECK(pol.s(r) == hs[h]);
    const auto z = gaussian_row<T>(rng, n, 1.0);
    const auto dp = gaussian_row<T>(rng, n, 1.0);
    std::vector<T> p1(n), p2(n), dz1(n), dz2(n);
    pol.forward(r, npos, z.data(), p1.data(), n);
    entmax::scalable_softmax(z.data(), p2.data(), n, hs[h], npos);
    CHECK(p1 == p2);
    pol.backward(r, npos, z.data(), p1.data(), dp.data(), dz1.data(), n);
    const auto g =
        entmax::scalable_softmax_backward(z.data(), p2.data(), dp.data(), dz2.data(), n, hs[h], npos);
    CHECK(dz1 == dz2);
    CHECK(std::fabs(ds_rows[r] - g.ds) <= 2 * std::numeric_limits<T>::epsilon() * std::fabs(g.ds));
    want_head[h] += static_cast<double>(ds_rows[r]);
  }
  std::vector<T> per_head(heads);
  entmax::sum_rows_per_head(ds_rows.data(), rows, heads, nq, per_head.data());
  for (std::size_t h = 0; h < heads; ++h) CHECK(static_cast<double>(per_head[h]) == Approx(want_head[h]));
  // Global s, and the fully masked convention.
  entmax::ScalableSoftmax<T> glob(T(1.25));
  CHECK(glob.s(17) == T(1.25));
  CHECK(glob.scale(3, 10) == static_cast<T>(1.25 * std::log(10.0)));
  CHECK(glob.scale(3, 1) == T(1));
  glob.set_gradient_sink(ds_rows.data());
  glob.scale_backward(5, 1, T(3));
  CHECK(ds_rows[5] == T(0));
  const std::vector<T> bad = {T(1), T(0)};
  CHECK_THROWS_AS(entmax::ScalableSoftmax<T>::per_head(bad.data(), 2, 4), std::domain_error);
  CHECK_THROWS_AS(entmax::ScalableSoftmax<T>::per_head(hs.data(), 0, 4), std::invalid_argument);
}

TEMPLATE_TEST_CASE("scalable_softmax shifts by the row max before scaling: huge finite scores stay valid",
                   "[scalable_softmax][overflow]", float, double) {
  using T = TestType;
  const T big = std::numeric_limits<T>::max();
  const T s = T(4);
  const std::size_t npos = 1000;
  const double c = 4.0 * std::log(1000.0);
  std::vector<T> z{big, -big, T(0)}, p(3, T(-1));
  const auto st = entmax::scalable_softmax(z.data(), p.data(), 3, s, npos);
  CHECK(p == std::vector<T>{T(1), T(0), T(0)});
  CHECK(st.max == T(0));  // stats of the shifted scaled row c · (z − max z)

  z = {T(1e30), T(-1e30), T(1e30), T(0)};
  p.assign(4, T(-1));
  entmax::scalable_softmax(z.data(), p.data(), 4, s, npos);
  CHECK(p[0] == T(0.5));
  CHECK(p[1] == T(0));
  CHECK(p[2] == T(0.5));
  CHECK(p[3] == T(0));
  // g = p ⊙ (dp − ⟨p, dp⟩) = (1/4, 0, −1/4, 0); dL/dc = ⟨g, z⟩ = 0 exactly in the shifted form.
  const std::vector<T> dp{T(1), T(0), T(0), T(0)};
  std::vector<T> dz(4, T(-7));
  const auto g = entmax::scalable_softmax_backward(z.data(), p.data(), dp.data(), dz.data(), 4, s, npos);
  CHECK(g.dscale == T(0));
  CHECK(g.ds == T(0));
  const double tol = 8.0 * static_cast<double>(std::numeric_limits<T>::epsilon()) * c;
  CHECK(std::fabs(static_cast<double>(dz[0]) - 0.25 * c) <= tol);
  CHECK(dz[1] == T(0));
  CHECK(std::fabs(static_cast<double>(dz[2]) + 0.25 * c) <= tol);
  CHECK(dz[3] == T(0));
}
