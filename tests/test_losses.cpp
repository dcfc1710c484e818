#include <entmax/losses.hpp>

#include "reference/scaled.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using ld = long double;

template <class T>
constexpr double eps() {
  return static_cast<double>(std::numeric_limits<T>::epsilon());
}

template <class T>
std::vector<T> gaussian(std::mt19937_64& rng, std::size_t n, double scale) {
  std::normal_distribution<double> nd(0.0, scale);
  std::vector<T> z(n);
  for (auto& v : z) v = static_cast<T>(nd(rng));
  return z;
}

// The α of each normalizer, for the reference (1 = softmax).
ld alpha_of(const entmax::Softmax&) { return 1; }
ld alpha_of(const entmax::Sparsemax&) { return 2; }
ld alpha_of(const entmax::Entmax15&) { return 1.5L; }
template <class S>
ld alpha_of(const entmax::EntmaxBisect<S>& b) {
  return static_cast<ld>(b.alpha);
}

template <class T, class N>
void check_against_reference(const N& norm, std::mt19937_64& rng) {
  const ld alpha = alpha_of(norm);
  for (std::size_t n : {1u, 2u, 3u, 7u, 8u, 9u, 16u, 17u, 33u, 257u, 5000u}) {
    for (double zscale : {1.0, 0.25, 5.0}) {
      if (n > 1000 && zscale != 1.0) continue;  // the long-double reference is slow on long rows
      const std::size_t rows = 5;
      const auto z = gaussian<T>(rng, rows * n, zscale);
      std::vector<std::int64_t> y(rows);
      for (std::size_t r = 0; r < rows; ++r) y[r] = static_cast<std::int64_t>((r * 7919 + n) % n);
      std::vector<T> losses(rows), dz(rows * n), p(n);
      entmax::LossOptions opt;
      opt.reduction = entmax::Reduction::none;
      const T total =
          entmax::fenchel_young_loss(norm, z.data(), rows, n, y.data(), losses.data(), dz.data(), opt);
      ld want_total = 0;
      for (std::size_t r = 0; r < rows; ++r) {
        INFO("alpha=" << static_cast<double>(alpha) << " n=" << n << " zscale=" << zscale << " row=" << r);
        const T* zr = z.data() + r * n;
        std::vector<ld> zl(zr, zr + n);
        const std::size_t yi = static_cast<std::size_t>(y[r]);
        const ld want = ref_scaled::fy_loss(zl, yi, alpha);
        want_total += want;
        double spread = 1;
        for (std::size_t i = 0; i < n; ++i)
          spread = std::max(spread, std::fabs(static_cast<double>(zl[i] - zl[yi])));
        // The loss is a maximum (envelope): first-order insensitive to errors in p*; what is
        // left is the rounding of Σ p (z − z_y) and of Ω, both bounded by ε times the spread.
        const double tol = 32 * eps<T>() * (spread + static_cast<double>(std::fabs(want)));
        CHECK(std::fabs(static_cast<double>(losses[r]) - static_cast<double>(want)) <= tol);
        CHECK(losses[r] >= T(0));
        if (alpha == 1) {  // softmax: cross-entropy logsumexp(z) − z_y
          ld m = zl[0];
          for (ld v : zl) m = std::max(m, v);
          ld s = 0;
          for (ld v : zl) s += std::exp(v - m);
          CHECK(std::fabs(static_cast<double>(losses[r]) - static_cast<double>(m + std::log(s) - zl[yi])) <=
                tol);
        }
        // Gradient p* − e_y with p* from the normalizer itself.
        norm.forward(zr, p.data(), n);
        for (std::size_t i = 0; i < n; ++i) {
          const T want_g = i == yi ? static_cast<T>(static_cast<double>(p[i]) - 1.0) : p[i];
          CHECK(dz[r * n + i] == want_g);
        }
      }
      CHECK(std::fabs(static_cast<double>(total) - static_cast<double>(want_total)) <=
            32 * eps<T>() * (1 + static_cast<double>(want_total)) * static_cast<double>(rows) * (1 + zscale));
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Fenchel-Young losses agree with a long-double reference", "[losses]", float, double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 61);
  check_against_reference<T>(entmax::Softmax{}, rng);
  check_against_reference<T>(entmax::Sparsemax{}, rng);
  check_against_reference<T>(entmax::Entmax15{}, rng);
  check_against_reference<T>(entmax::EntmaxBisect<T>{T(1.25)}, rng);
  check_against_reference<T>(entmax::EntmaxBisect<T>{T(1.75)}, rng);
}

TEST_CASE("Fenchel-Young loss gradients equal central finite differences", "[losses][gradient]") {
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 67);
  std::size_t checked = 0, total = 0;
  for (ld alpha : {1.0L, 1.25L, 1.5L, 2.0L, 3.0L}) {
    for (std::size_t n : {2u, 3u, 9u, 33u}) {
      const auto z = gaussian<double>(rng, n, 1.0);
      const std::int64_t y = static_cast<std::int64_t>(n / 2);
      std::vector<double> dz(n);
      double loss = 0;
      if (alpha == 1) {
        loss = entmax::softmax_loss(z.data(), 1, n, &y, static_cast<double*>(nullptr), dz.data());
      } else if (alpha == 2) {
        loss = entmax::sparsemax_loss(z.data(), 1, n, &y, static_cast<double*>(nullptr), dz.data());
      } else if (alpha == 1.5L) {
        loss = entmax::entmax15_loss(z.data(), 1, n, &y, static_cast<double*>(nullptr), dz.data());
      } else {
        loss = entmax::entmax_bisect_loss(z.data(), 1, n, static_cast<double>(alpha), &y,
                                          static_cast<double*>(nullptr), dz.data());
      }
      std::vector<ld> zl(z.begin(), z.end());
      CHECK(std::isfinite(loss));
      for (std::size_t j = 0; j < n; ++j) {
        ++total;
        std::vector<ld> zp = zl, zm = zl;
        const ld h = 1e-6L;
        zp[j] += h;
        zm[j] -= h;
        const std::size_t k0 =
            ref_scaled::support(alpha == 1 ? ref_scaled::softmax(zl) : ref_scaled::entmax(zl, alpha));
        const std::size_t kp =
            ref_scaled::support(alpha == 1 ? ref_scaled::softmax(zp) : ref_scaled::entmax(zp, alpha));
        const std::size_t km =
            ref_scaled::support(alpha == 1 ? ref_scaled::softmax(zm) : ref_scaled::entmax(zm, alpha));
        if (kp != k0 || km != k0) continue;
        ++checked;
        const double fd = static_cast<double>((ref_scaled::fy_loss(zp, static_cast<std::size_t>(y), alpha) -
                                               ref_scaled::fy_loss(zm, static_cast<std::size_t>(y), alpha)) /
                                              (2 * h));
        INFO("alpha=" << static_cast<double>(alpha) << " n=" << n << " j=" << j);
        CHECK(std::fabs(dz[j] - fd) <= 1e-6 * std::fabs(fd) + 1e-9);
      }
    }
  }
  CHECK(checked * 2 >= total);
}

TEMPLATE_TEST_CASE("Fenchel-Young losses: reductions and ignore_index", "[losses]", float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed() + 71);
  const std::size_t rows = 6, n = 10;
  const auto z = gaussian<T>(rng, rows * n, 1.0);
  const std::vector<std::int64_t> y = {3, -100, 0, 9, -100, 5};
  std::vector<T> none(rows, T(-1)), dz_none(rows * n), dz_sum(rows * n), dz_mean(rows * n);
  entmax::LossOptions opt;
  opt.reduction = entmax::Reduction::none;
  const T tot = entmax::entmax15_loss(z.data(), rows, n, y.data(), none.data(), dz_none.data(), opt);
  opt.reduction = entmax::Reduction::sum;
  const T sum =
      entmax::entmax15_loss(z.data(), rows, n, y.data(), static_cast<T*>(nullptr), dz_sum.data(), opt);
  opt.reduction = entmax::Reduction::mean;
  const T mean =
      entmax::entmax15_loss(z.data(), rows, n, y.data(), static_cast<T*>(nullptr), dz_mean.data(), opt);
  ld acc = 0;
  for (std::size_t r = 0; r < rows; ++r) acc += static_cast<ld>(none[r]);
  CHECK(std::fabs(static_cast<double>(tot) - static_cast<double>(acc)) <=
        8 * eps<T>() * static_cast<double>(acc));
  CHECK(sum == tot);
  CHECK(std::fabs(static_cast<double>(mean) - static_cast<double>(sum) / 4) <=
        4 * eps<T>() * static_cast<double>(sum));
  CHECK(none[1] == T(0));
  CHECK(none[4] == T(0));
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(dz_none[1 * n + i] == T(0));
    CHECK(dz_mean[4 * n + i] == T(0));
  }
  for (std::size_t k = 0; k < rows * n; ++k) {
    CHECK(dz_sum[k] == dz_none[k]);
    CHECK(std::fabs(static_cast<double>(dz_mean[k]) - static_cast<double>(dz_none[k]) / 4) <= eps<T>());
  }
  // Everything ignored: mean is 0 (never NaN), gradients 0. A custom ignore_index.
  const std::vector<std::int64_t> all_ignored(rows, 7);
  opt.ignore_index = 7;
  CHECK(entmax::sparsemax_loss(z.data(), rows, n, all_ignored.data(), static_cast<T*>(nullptr),
                               dz_mean.data(), opt) == T(0));
  for (T v : dz_mean) CHECK(v == T(0));
}

TEMPLATE_TEST_CASE("Fenchel-Young losses: zero loss, masked scores, -inf targets, NaN rows, strides",
                   "[losses][masking]", float, double) {
  using T = TestType;
  const T ninf = -std::numeric_limits<T>::infinity();
  entmax::LossOptions sum_opt;
  sum_opt.reduction = entmax::Reduction::sum;
  // A target far above the rest: sparse maps give p* = e_y and loss exactly 0.
  std::vector<T> z = {T(0), T(10), T(0.5), T(-1)};
  const std::int64_t y1 = 1;
  std::vector<T> dz(4);
  CHECK(entmax::sparsemax_loss(z.data(), 1, 4, &y1, static_cast<T*>(nullptr), dz.data()) == T(0));
  CHECK(entmax::entmax15_loss(z.data(), 1, 4, &y1, static_cast<T*>(nullptr), dz.data()) == T(0));
  for (T v : dz) CHECK(v == T(0));
  CHECK(entmax::softmax_loss(z.data(), 1, 4, &y1, static_cast<T*>(nullptr), dz.data()) > T(0));

  // Masked scores: finite loss equal to the compacted row's, zero gradient where masked.
  std::mt19937_64 rng(Catch::rngSeed() + 73);
  for (std::size_t n : {5u, 17u, 40u}) {
    auto zz = gaussian<T>(rng, n, 1.0);
    std::vector<T> zc;
    for (std::size_t i = 0; i < n; ++i) {
      if (i % 3 == 1) {
        zz[i] = ninf;
      } else {
        zc.push_back(zz[i]);
      }
    }
    const std::int64_t y = 0, yc = 0;
    std::vector<T> g(n), gc(zc.size());
    const T l = entmax::entmax15_loss(zz.data(), 1, n, &y, static_cast<T*>(nullptr), g.data());
    const T lc = entmax::entmax15_loss(zc.data(), 1, zc.size(), &yc, static_cast<T*>(nullptr), gc.data());
    CHECK(std::isfinite(l));
    CHECK(std::fabs(l - lc) <= 16 * std::numeric_limits<T>::epsilon() * (1 + lc));
    for (std::size_t i = 0; i < n; ++i)
      if (i % 3 == 1) CHECK(g[i] == T(0));
    const T ls = entmax::softmax_loss(zz.data(), 1, n, &y, static_cast<T*>(nullptr), g.data());
    CHECK(std::isfinite(ls));
    // The target masked: +inf loss, finite gradient p* − e_y.
    const std::int64_t ym = 1;
    const T linf = entmax::entmax15_loss(zz.data(), 1, n, &ym, static_cast<T*>(nullptr), g.data());
    CHECK(linf == std::numeric_limits<T>::infinity());
    CHECK(g[1] == T(-1));
    for (T v : g) CHECK(std::isfinite(v));
  }
  // Fully masked row with a target: +inf loss, gradient −e_y, no NaN.
  std::vector<T> masked(6, ninf), gm(6, T(5));
  const std::int64_t y2 = 2;
  CHECK(entmax::sparsemax_loss(masked.data(), 1, 6, &y2, static_cast<T*>(nullptr), gm.data()) ==
        std::numeric_limits<T>::infinity());
  for (std::size_t i = 0; i < 6; ++i) CHECK(gm[i] == (i == 2 ? T(-1) : T(0)));
  // NaN in a row: NaN loss.
  std::vector<T> zn = {T(1), std::numeric_limits<T>::quiet_NaN(), T(0)};
  const std::int64_t y0 = 0;
  CHECK(std::isnan(
      entmax::entmax15_loss(zn.data(), 1, 3, &y0, static_cast<T*>(nullptr), static_cast<T*>(nullptr))));
  // Strided rows (ld > n) give the same losses as packed rows.
  const std::size_t rows = 3, n = 5, ld_ = 8;
  const auto packed = gaussian<T>(rng, rows * n, 1.0);
  std::vector<T> strided(rows * ld_, std::numeric_limits<T>::quiet_NaN());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t i = 0; i < n; ++i) strided[r * ld_ + i] = packed[r * n + i];
  const std::vector<std::int64_t> ys = {0, 4, 2};
  std::vector<T> la(rows), lb(rows), ga(rows * n), gb(rows * ld_, T(42));
  entmax::LossOptions none;
  none.reduction = entmax::Reduction::none;
  entmax::fenchel_young_loss(entmax::Entmax15{}, packed.data(), rows, n, ys.data(), la.data(), ga.data(),
                             none);
  entmax::fenchel_young_loss(entmax::Entmax15{}, strided.data(), rows, n, ld_, ys.data(), lb.data(),
                             gb.data(), none);
  CHECK(la == lb);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t i = 0; i < n; ++i) CHECK(ga[r * n + i] == gb[r * ld_ + i]);
    for (std::size_t i = n; i < ld_; ++i) CHECK(gb[r * ld_ + i] == T(42));  // padding untouched
  }
}

TEMPLATE_TEST_CASE("Fenchel-Young losses reject bad input before any write", "[losses][errors]", float,
                   double) {
  using T = TestType;
  std::vector<T> z(6, T(0)), losses(2, T(-7)), dz(6, T(-7));
  const std::vector<std::int64_t> bad_hi = {0, 3}, bad_neg = {-1, 0}, ok = {0, 2};
  entmax::LossOptions none;
  none.reduction = entmax::Reduction::none;
  CHECK_THROWS_AS(entmax::entmax15_loss(z.data(), 2, 3, bad_hi.data(), losses.data(), dz.data(), none),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::entmax15_loss(z.data(), 2, 3, bad_neg.data(), losses.data(), dz.data(), none),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::entmax15_loss(z.data(), 2, 3, ok.data(), static_cast<T*>(nullptr), dz.data(), none),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::fenchel_young_loss(entmax::Sparsemax{}, z.data(), 2, 3, 2, ok.data(), losses.data(),
                                             dz.data(), none),
                  std::invalid_argument);
  CHECK_THROWS_AS(entmax::entmax_bisect_loss(z.data(), 2, 3, T(1), ok.data(), losses.data(), dz.data(), none),
                  std::domain_error);
  for (T v : losses) CHECK(v == T(-7));
  for (T v : dz) CHECK(v == T(-7));
  try {
    entmax::entmax15_loss(z.data(), 2, 3, bad_hi.data(), losses.data(), dz.data(), none);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("targets[1] = 3 outside [0, 3)") != std::string::npos);
  }
  // Empty batch: 0, nothing written.
  CHECK(entmax::entmax15_loss(z.data(), 0, 3, ok.data(), static_cast<T*>(nullptr), dz.data()) == T(0));
  for (T v : dz) CHECK(v == T(-7));
}

TEMPLATE_TEST_CASE("Fenchel-Young loss over Eigen matrices: both storage orders, blocks, Maps",
                   "[losses][eigen]", float, double) {
  using T = TestType;
  using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  std::mt19937_64 rng(Catch::rngSeed() + 79);
  const std::size_t rows = 5, n = 11;
  const auto raw = gaussian<T>(rng, rows * n, 1.0);
  const std::vector<std::int64_t> y = {0, 10, -100, 4, 7};
  entmax::LossOptions none;
  none.reduction = entmax::Reduction::none;
  std::vector<T> want_l(rows), want_g(rows * n);
  const T want = entmax::fenchel_young_loss(entmax::Entmax15{}, raw.data(), rows, n, y.data(), want_l.data(),
                                            want_g.data(), none);
  const Eigen::Map<const RowMat> zmap(raw.data(), static_cast<Eigen::Index>(rows),
                                      static_cast<Eigen::Index>(n));
  const ColMat zcol = zmap;
  RowMat big = RowMat::Zero(static_cast<Eigen::Index>(rows + 2), static_cast<Eigen::Index>(n + 3));
  big.block(1, 2, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(n)) = zmap;
  auto check = [&](const entmax::LossResult<T>& r) {
    CHECK(r.loss == want);
    for (std::size_t i = 0; i < rows; ++i) CHECK(r.row_losses(static_cast<Eigen::Index>(i)) == want_l[i]);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < n; ++j)
        CHECK(r.dz(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) == want_g[i * n + j]);
  };
  check(entmax::fenchel_young_loss(entmax::Entmax15{}, zmap, y, none));
  check(entmax::fenchel_young_loss(entmax::Entmax15{}, zcol, y, none));
  check(entmax::fenchel_young_loss(
      entmax::Entmax15{}, big.block(1, 2, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(n)), y,
      none));
  const std::vector<std::int64_t> short_y = {0, 1};
  CHECK_THROWS_AS(entmax::fenchel_young_loss(entmax::Entmax15{}, zmap, short_y), std::invalid_argument);
}
