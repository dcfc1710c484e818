// Row-wise normalizers over Eigen matrices: every layout (ColMajor, RowMajor, blocks with outer
// stride, Maps over raw memory, strided Maps, expressions) against (a) the row kernels applied to
// copies of the rows and (b) the naive long-double reference.
#include <entmax/eigen.hpp>

#include <entmax/asentmax.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/scalable_softmax.hpp>

#include <catch2/catch.hpp>

#include <reference/alpha.hpp>

#include <Eigen/Core>

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
using Eigen::Dynamic;
using Eigen::Index;

template <class T>
using RowMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::RowMajor>;
template <class T>
using ColMat = Eigen::Matrix<T, Dynamic, Dynamic, Eigen::ColMajor>;

std::uint32_t seed() { return Catch::rngSeed() == 0 ? 20260u : Catch::rngSeed(); }

/// Fills x with N(0, scale²) scores; a few rows get -inf entries, one row (if any) is all -inf.
template <class D>
void fill_scores(Eigen::MatrixBase<D>& x, std::mt19937& gen, double scale, bool with_masks) {
  using T = typename D::Scalar;
  std::normal_distribution<double> normal(0.0, scale);
  for (Index i = 0; i < x.rows(); ++i)
    for (Index j = 0; j < x.cols(); ++j) x(i, j) = static_cast<T>(normal(gen));
  if (!with_masks) return;
  const T ninf = -std::numeric_limits<T>::infinity();
  if (x.rows() >= 2 && x.cols() >= 2) {
    for (Index j = 0; j < x.cols(); j += 3) x(1, j) = ninf;  // a partly masked row
  }
  if (x.rows() >= 3) x.row(x.rows() - 1).setConstant(ninf);  // a fully masked row
}

/// Row i of x copied into a std::vector (the independent way to feed the row kernels).
template <class D>
std::vector<typename D::Scalar> row_copy(const Eigen::MatrixBase<D>& x, Index i) {
  std::vector<typename D::Scalar> r(static_cast<std::size_t>(x.cols()));
  for (Index j = 0; j < x.cols(); ++j) r[static_cast<std::size_t>(j)] = x(i, j);
  return r;
}

/// Naive long-double softmax (the reference for Softmax rows).
template <class T>
std::vector<ld> softmax_ref(const std::vector<T>& z) {
  std::vector<ld> p(z.size(), 0.0L);
  ld m = -std::numeric_limits<ld>::infinity();
  for (T v : z) m = std::max(m, static_cast<ld>(v));
  if (m == -std::numeric_limits<ld>::infinity()) return p;
  ld s = 0;
  for (std::size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(static_cast<ld>(z[i]) - m));
  for (ld& v : p) v /= s;
  return p;
}

template <class T>
std::vector<ld> softmax_backward_ref(const std::vector<T>& p, const std::vector<T>& dp) {
  ld dot = 0;
  for (std::size_t i = 0; i < p.size(); ++i) dot += static_cast<ld>(p[i]) * static_cast<ld>(dp[i]);
  std::vector<ld> dz(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) dz[i] = static_cast<ld>(p[i]) * (static_cast<ld>(dp[i]) - dot);
  return dz;
}

template <class T>
std::vector<ld> to_ld(const std::vector<T>& v) {
  return std::vector<ld>(v.begin(), v.end());
}

/// The policies under test with their α for the long-double reference (α = 1: softmax).
template <class T>
struct Case {
  const char* name;
  double alpha;
};

template <class T, class Norm>
std::vector<ld> forward_ref(const Norm&, double alpha, const std::vector<T>& z) {
  if (alpha == 1.0) return softmax_ref(z);
  return ref_alpha::entmax_alpha(z.data(), z.size(), static_cast<ld>(alpha)).p;
}

template <class T>
std::vector<ld> backward_ref(double alpha, const std::vector<T>& p, const std::vector<T>& dp) {
  if (alpha == 1.0) return softmax_backward_ref(p, dp);
  return ref_alpha::entmax_alpha_backward(to_ld(p), to_ld(dp), static_cast<ld>(alpha));
}

/// Checks normalize_rows(norm, z, p) (p any writable layout, pre-sized) against the row kernel on
/// copied rows (equal within 2 ulp, same stats) and against the long-double reference (16 ε).
template <class Norm, class DZ, class DP>
void check_forward(const Norm& norm, double alpha, const Eigen::MatrixBase<DZ>& z, Eigen::MatrixBase<DP>& p) {
  using T = typename DZ::Scalar;
  const T eps = std::numeric_limits<T>::epsilon();
  std::vector<entmax::RowStats<T>> stats;
  entmax::normalize_rows(norm, z, p, stats);
  REQUIRE(stats.size() == static_cast<std::size_t>(z.rows()));
  for (Index i = 0; i < z.rows(); ++i) {
    const std::vector<T> zr = row_copy(z, i);
    std::vector<T> expect(zr.size());
    const entmax::RowStats<T> s = norm.forward(zr.data(), expect.data(), zr.size());
    const std::vector<ld> ref = forward_ref(norm, alpha, zr);
    INFO("row " << i << " of " << z.rows() << "x" << z.cols() << ", seed " << seed());
    CHECK(stats[static_cast<std::size_t>(i)].support == s.support);
    if (std::isfinite(s.max)) {
      CHECK(stats[static_cast<std::size_t>(i)].max == s.max);
      CHECK(std::fabs(stats[static_cast<std::size_t>(i)].tau - s.tau) <=
            2 * eps * std::max(T(1), std::fabs(s.tau)));
    }
    for (Index j = 0; j < z.cols(); ++j) {
      const auto k = static_cast<std::size_t>(j);
      INFO("col " << j << ": got " << p(i, j) << ", kernel " << expect[k] << ", reference "
                  << static_cast<double>(ref[k]));
      CHECK(std::fabs(p(i, j) - expect[k]) <= 2 * eps);
      CHECK(std::fabs(static_cast<ld>(p(i, j)) - ref[k]) <= 16 * static_cast<ld>(eps));
      if (zr[k] == -std::numeric_limits<T>::infinity()) CHECK(p(i, j) == T(0));
    }
  }
}

/// Checks normalize_rows_backward(norm, p, dp, dz) against the row kernel on copied rows and the
/// reference VJP evaluated at the same p (16 ε · max|dp| absolute).
template <class Norm, class DP, class DDP, class DDZ>
void check_backward(const Norm& norm, double alpha, const Eigen::MatrixBase<DP>& p,
                    const Eigen::MatrixBase<DDP>& dp, Eigen::MatrixBase<DDZ>& dz) {
  using T = typename DP::Scalar;
  const T eps = std::numeric_limits<T>::epsilon();
  entmax::normalize_rows_backward(norm, p, dp, dz);
  for (Index i = 0; i < p.rows(); ++i) {
    const std::vector<T> pr = row_copy(p, i), dpr = row_copy(dp, i);
    std::vector<T> expect(pr.size());
    norm.backward(pr.data(), dpr.data(), expect.data(), pr.size());
    const std::vector<ld> ref = backward_ref(alpha, pr, dpr);
    T scale = T(1);
    for (T v : dpr) scale = std::max(scale, std::fabs(v));
    INFO("row " << i << " of " << p.rows() << "x" << p.cols() << ", seed " << seed());
    for (Index j = 0; j < p.cols(); ++j) {
      const auto k = static_cast<std::size_t>(j);
      INFO("col " << j << ": got " << dz(i, j) << ", kernel " << expect[k] << ", reference "
                  << static_cast<double>(ref[k]));
      CHECK(std::fabs(dz(i, j) - expect[k]) <= 2 * eps * scale);
      CHECK(std::fabs(static_cast<ld>(dz(i, j)) - ref[k]) <= 16 * static_cast<ld>(eps * scale));
      if (pr[k] == T(0)) CHECK(dz(i, j) == T(0));
    }
  }
}

/// Runs forward and backward of one policy through every layout for one shape.
template <class T, class Norm>
void check_all_layouts(const Norm& norm, double alpha, Index rows, Index cols, std::mt19937& gen) {
  const double scale = (gen() % 2) ? 1.0 : 0.25;  // sparse and dense regimes
  RowMat<T> zr(rows, cols);
  fill_scores(zr, gen, scale, true);
  const ColMat<T> zc = zr;
  RowMat<T> dpr(rows, cols);
  fill_scores(dpr, gen, 1.0, false);
  const ColMat<T> dpc = dpr;

  SECTION("RowMajor matrix") {
    RowMat<T> p(rows, cols), dz(rows, cols);
    check_forward(norm, alpha, zr, p);
    check_backward(norm, alpha, p, dpr, dz);
  }
  SECTION("ColMajor matrix") {
    ColMat<T> p(rows, cols), dz(rows, cols);
    check_forward(norm, alpha, zc, p);
    check_backward(norm, alpha, p, dpc, dz);
  }
  SECTION("mixed layouts: ColMajor in, RowMajor out and back") {
    RowMat<T> p(rows, cols);
    ColMat<T> dz(rows, cols);
    check_forward(norm, alpha, zc, p);
    check_backward(norm, alpha, p, dpc, dz);
  }
  SECTION("blocks with outer stride, both storage orders") {
    RowMat<T> big_r = RowMat<T>::Constant(rows + 3, cols + 5, T(7));
    ColMat<T> big_c = ColMat<T>::Constant(rows + 4, cols + 2, T(7));
    big_r.block(2, 3, rows, cols) = zr;
    auto zb = big_r.block(2, 3, rows, cols);
    auto pb = big_c.block(1, 1, rows, cols);
    check_forward(norm, alpha, zb, pb);
    // The block's frame is untouched.
    CHECK((big_c.topRows(1).array() == T(7)).all());
    CHECK((big_c.bottomRows(3).array() == T(7)).all());
    CHECK((big_c.leftCols(1).array() == T(7)).all());
    CHECK((big_c.rightCols(1).array() == T(7)).all());
    RowMat<T> dz_big = RowMat<T>::Constant(rows + 1, cols + 4, T(7));
    auto dzb = dz_big.block(1, 2, rows, cols);
    check_backward(norm, alpha, pb, dpc, dzb);
    CHECK((dz_big.topRows(1).array() == T(7)).all());
    CHECK((dz_big.leftCols(2).array() == T(7)).all());
    CHECK((dz_big.rightCols(2).array() == T(7)).all());
  }
  SECTION("Maps over raw memory with outer stride, and with inner stride") {
    const Index ld_r = cols + 3, ld_c = rows + 2;
    std::vector<T> zmem(static_cast<std::size_t>(rows * ld_r), T(0));
    std::vector<T> pmem(static_cast<std::size_t>(cols * ld_c), T(-1));
    Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::OuterStride<>> zm(zmem.data(), rows, cols,
                                                                     Eigen::OuterStride<>(ld_r));
    zm = zr;
    Eigen::Map<ColMat<T>, Eigen::Unaligned, Eigen::OuterStride<>> pm(pmem.data(), rows, cols,
                                                                     Eigen::OuterStride<>(ld_c));
    check_forward(norm, alpha, zm, pm);
    // Padding between the mapped columns is untouched.
    for (Index j = 0; j < cols; ++j)
      for (Index k = rows; k < ld_c; ++k) CHECK(pmem[static_cast<std::size_t>(j * ld_c + k)] == T(-1));
    // A RowMajor map whose rows are NOT contiguous (inner stride 2) goes through scratch rows.
    std::vector<T> dzmem(static_cast<std::size_t>(rows * cols * 2), T(5));
    using SMap = Eigen::Map<RowMat<T>, Eigen::Unaligned, Eigen::Stride<Dynamic, Dynamic>>;
    SMap dzm(dzmem.data(), rows, cols, Eigen::Stride<Dynamic, Dynamic>(2 * cols, 2));
    check_backward(norm, alpha, pm, dpr, dzm);
    for (std::size_t k = 1; k < dzmem.size(); k += 2) CHECK(dzmem[k] == T(5));
  }
  SECTION("in place: p is z, dz is dp") {
    RowMat<T> a = zr;
    ColMat<T> b = zc;
    RowMat<T> pa(rows, cols);
    entmax::normalize_rows(norm, zr, pa);
    entmax::normalize_rows(norm, a, a);
    entmax::normalize_rows(norm, b, b);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) {
        CHECK(a(i, j) == pa(i, j));
        CHECK(std::fabs(b(i, j) - pa(i, j)) <= 2 * std::numeric_limits<T>::epsilon());
      }
    RowMat<T> dz_expect(rows, cols);
    entmax::normalize_rows_backward(norm, pa, dpr, dz_expect);
    RowMat<T> g = dpr;
    entmax::normalize_rows_backward(norm, pa, g, g);
    CHECK(g == dz_expect);
  }
  SECTION("expression input and the returning overload") {
    const RowMat<T> twice = (zr.array() * T(2)).matrix();
    RowMat<T> p_expr(rows, cols);
    entmax::normalize_rows(norm, zr * T(2), p_expr);
    const RowMat<T> p_ret = entmax::normalize_rows(norm, twice);
    const ColMat<T> p_ret_c = entmax::normalize_rows(norm, ColMat<T>(twice));
    CHECK(p_ret == p_expr);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j)
        CHECK(std::fabs(p_ret_c(i, j) - p_ret(i, j)) <= 2 * std::numeric_limits<T>::epsilon());
    std::vector<entmax::RowStats<T>> stats;
    RowMat<T> p2(rows, cols);
    entmax::normalize_rows(norm, twice, p2, stats);
    const auto support = entmax::support_sizes(norm, twice);
    REQUIRE(support.size() == rows);
    for (Index i = 0; i < rows; ++i) {
      CHECK(support(i) == static_cast<Index>(stats[static_cast<std::size_t>(i)].support));
      CHECK(support(i) == static_cast<Index>((p2.row(i).array() != T(0)).count()));
    }
  }
}

const std::vector<Index> kCols = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 257};

}  // namespace

TEMPLATE_TEST_CASE("normalize_rows: softmax over every layout", "[eigen]", float, double) {
  std::mt19937 gen(seed());
  const Index cols = GENERATE(from_range(kCols));
  const Index rows = GENERATE(1, 4);
  check_all_layouts<TestType>(entmax::Softmax{}, 1.0, rows, cols, gen);
}

TEMPLATE_TEST_CASE("normalize_rows: sparsemax over every layout", "[eigen]", float, double) {
  std::mt19937 gen(seed() + 1);
  const Index cols = GENERATE(from_range(kCols));
  const Index rows = GENERATE(1, 4);
  check_all_layouts<TestType>(entmax::Sparsemax{}, 2.0, rows, cols, gen);
}

TEMPLATE_TEST_CASE("normalize_rows: entmax15 over every layout", "[eigen]", float, double) {
  std::mt19937 gen(seed() + 2);
  const Index cols = GENERATE(from_range(kCols));
  const Index rows = GENERATE(1, 4);
  check_all_layouts<TestType>(entmax::Entmax15{}, 1.5, rows, cols, gen);
}

TEMPLATE_TEST_CASE("normalize_rows: entmax_bisect alpha = 1.25 over every layout", "[eigen]", float, double) {
  std::mt19937 gen(seed() + 3);
  const Index cols = GENERATE(from_range(kCols));
  const Index rows = GENERATE(1, 4);
  check_all_layouts<TestType>(entmax::EntmaxBisect<TestType>(TestType(1.25)), 1.25, rows, cols, gen);
}

TEMPLATE_TEST_CASE("normalize_rows: large rows", "[eigen]", float, double) {
  using T = TestType;
  std::mt19937 gen(seed() + 4);
  RowMat<T> z(3, 20000);
  fill_scores(z, gen, 1.0, true);
  ColMat<T> p(3, 20000);
  check_forward(entmax::Entmax15{}, 1.5, z, p);
  check_forward(entmax::Sparsemax{}, 2.0, ColMat<T>(z), p);
}

TEMPLATE_TEST_CASE("normalize_rows: row-scaled ASEntmax, row index = matrix row", "[eigen]", float, double) {
  using T = TestType;
  const T eps = std::numeric_limits<T>::epsilon();
  std::mt19937 gen(seed() + 5);
  const Index cols = GENERATE(1, 3, 16, 17, 100);
  const Index rows = 5;
  RowMat<T> z(rows, cols), dp(rows, cols);
  fill_scores(z, gen, 1.0, true);
  fill_scores(dp, gen, 1.0, false);
  const ColMat<T> zc = z;
  std::vector<T> beta = {T(0.5), T(1), T(0), T(2), T(0.25)}, gamma = {T(1), T(0.5), T(-1), T(2), T(0)};
  std::vector<T> dbeta(rows, T(9)), dgamma(rows, T(9));
  entmax::ASEntmax<T> pol(beta.data(), gamma.data(), static_cast<std::size_t>(rows));
  pol.set_gradient_sinks(dbeta.data(), dgamma.data());
  const std::size_t npos = GENERATE(std::size_t{0}, std::size_t{7});
  const std::size_t visible = npos == 0 ? static_cast<std::size_t>(cols) + 1 : npos;

  ColMat<T> p(rows, cols), dz(rows, cols);
  std::vector<entmax::RowStats<T>> stats;
  entmax::normalize_rows(pol, zc, p, stats, npos);
  entmax::normalize_rows_backward(pol, zc, p, dp, dz, npos);
  RowMat<T> pr(rows, cols);
  entmax::normalize_rows(pol, z, pr, nullptr, npos);
  for (Index i = 0; i < rows; ++i) {
    const auto r = static_cast<std::size_t>(i);
    std::vector<T> zi = row_copy(z, i), pi(zi.size()), dpi = row_copy(dp, i), dzi(zi.size());
    const entmax::RowStats<T> s =
        entmax::asentmax(zi.data(), pi.data(), zi.size(), T(1.5), beta[r], gamma[r], T(1), visible);
    const auto g = entmax::asentmax_backward(zi.data(), pi.data(), dpi.data(), dzi.data(), zi.size(), T(1.5),
                                             beta[r], gamma[r], T(1), visible);
    // Independent reference: long-double entmax15 of s·z with s from the definition.
    const ld sc = 1 + static_cast<ld>(beta[r]) *
                          std::pow(std::log(static_cast<ld>(visible)), static_cast<ld>(gamma[r]));
    std::vector<ld> zs(zi.size());
    for (std::size_t k = 0; k < zi.size(); ++k) zs[k] = sc * static_cast<ld>(zi[k]);
    const std::vector<ld> ref = ref_alpha::entmax_alpha(zs.data(), zs.size(), 1.5L).p;
    INFO("row " << i << ", cols " << cols << ", npos " << visible << ", seed " << seed());
    CHECK(stats[r].support == s.support);
    CHECK(std::fabs(dbeta[r] - g.dbeta) <= 4 * eps * std::max(T(1), std::fabs(g.dbeta)));
    CHECK(std::fabs(dgamma[r] - g.dgamma) <= 4 * eps * std::max(T(1), std::fabs(g.dgamma)));
    for (Index j = 0; j < cols; ++j) {
      const auto k = static_cast<std::size_t>(j);
      CHECK(std::fabs(p(i, j) - pi[k]) <= 2 * eps);
      CHECK(pr(i, j) == p(i, j));
      // 16 ε for the map plus the rounding of s·z in T (relative ε on the scores).
      CHECK(std::fabs(static_cast<ld>(p(i, j)) - ref[k]) <= 16 * static_cast<ld>(eps));
      CHECK(std::fabs(dz(i, j) - dzi[k]) <= 4 * eps * std::max(T(1), std::fabs(dzi[k])));
    }
  }
  // Per-row parameters for fewer rows than the matrix has: rejected before any read past them.
  const entmax::ASEntmax<T> short_rows(beta.data(), gamma.data(), static_cast<std::size_t>(rows - 1));
  CHECK_THROWS_AS(entmax::normalize_rows(short_rows, zc, p, stats, npos), std::invalid_argument);
  CHECK_THROWS_AS(entmax::normalize_rows_backward(short_rows, zc, p, dp, dz, npos), std::invalid_argument);
}

TEMPLATE_TEST_CASE("normalize_rows: row-scaled ScalableSoftmax and PerRowScale", "[eigen]", float, double) {
  using T = TestType;
  const T eps = std::numeric_limits<T>::epsilon();
  std::mt19937 gen(seed() + 6);
  const Index rows = 4, cols = GENERATE(2, 9, 33);
  RowMat<T> z(rows, cols), dp(rows, cols);
  fill_scores(z, gen, 1.0, true);
  fill_scores(dp, gen, 1.0, false);
  const ColMat<T> zc = z;
  const T s = T(0.8);
  std::vector<T> ds_rows(rows, T(9));
  entmax::ScalableSoftmax<T> ss(s);
  ss.set_gradient_sink(ds_rows.data());
  ColMat<T> p(rows, cols), dz(rows, cols);
  entmax::normalize_rows(ss, zc, p);
  entmax::normalize_rows_backward(ss, zc, p, dp, dz);
  // PerRowScale with the same per-row scale c = s·log(cols + 1) and a Softmax base: same rows.
  const T c = static_cast<T>(static_cast<double>(s) * std::log(static_cast<double>(cols + 1)));
  std::vector<T> scales(rows, c), dscales(rows, T(9));
  entmax::PerRowScale<T, entmax::Softmax> prs(entmax::Softmax{}, scales.data(), dscales.data());
  RowMat<T> p2(rows, cols), dz2(rows, cols);
  entmax::normalize_rows(prs, z, p2);
  entmax::normalize_rows_backward(prs, z, p2, dp, dz2);
  for (Index i = 0; i < rows; ++i) {
    const auto r = static_cast<std::size_t>(i);
    std::vector<T> zi = row_copy(z, i), pi(zi.size()), dpi = row_copy(dp, i), dzi(zi.size());
    entmax::scalable_softmax(zi.data(), pi.data(), zi.size(), s, static_cast<std::size_t>(cols) + 1);
    const auto g = entmax::scalable_softmax_backward(zi.data(), pi.data(), dpi.data(), dzi.data(), zi.size(),
                                                     s, static_cast<std::size_t>(cols) + 1);
    INFO("row " << i << ", cols " << cols << ", seed " << seed());
    CHECK(std::fabs(ds_rows[r] - g.ds) <= 4 * eps * std::max(T(1), std::fabs(g.ds)));
    CHECK(std::fabs(dscales[r] - g.dscale) <= 4 * eps * std::max(T(1), std::fabs(g.dscale)));
    for (Index j = 0; j < cols; ++j) {
      const auto k = static_cast<std::size_t>(j);
      CHECK(std::fabs(p(i, j) - pi[k]) <= 2 * eps);
      CHECK(std::fabs(p2(i, j) - pi[k]) <= 2 * eps);
      CHECK(std::fabs(dz(i, j) - dzi[k]) <= 4 * eps * std::max(T(1), std::fabs(dzi[k])));
      CHECK(std::fabs(dz2(i, j) - dzi[k]) <= 4 * eps * std::max(T(1), std::fabs(dzi[k])));
    }
  }
}

TEMPLATE_TEST_CASE("normalize_rows: empty extents are no-ops", "[eigen]", float, double) {
  using T = TestType;
  RowMat<T> z0(0, 5), p0(0, 5);
  entmax::normalize_rows(entmax::Entmax15{}, z0, p0);
  ColMat<T> z1(3, 0), p1(3, 0);
  std::vector<entmax::RowStats<T>> stats;
  entmax::normalize_rows(entmax::Sparsemax{}, z1, p1, stats);
  REQUIRE(stats.size() == 3);
  for (const auto& s : stats) {
    CHECK(s.support == 0);
    CHECK(s.max == -std::numeric_limits<T>::infinity());
  }
  entmax::normalize_rows_backward(entmax::Softmax{}, p1, p1, p1);
  CHECK(entmax::normalize_rows(entmax::Softmax{}, z0).rows() == 0);
  // A row-scaled policy on empty rows: no scores, zero scale gradients recorded for every row.
  std::vector<T> beta(3, T(1)), gamma(3, T(1)), dbeta(3, T(9)), dgamma(3, T(9));
  entmax::ASEntmax<T> pol(beta.data(), gamma.data(), 3);
  pol.set_gradient_sinks(dbeta.data(), dgamma.data());
  entmax::normalize_rows(pol, z1, p1);
  entmax::normalize_rows_backward(pol, z1, p1, p1, p1);
  for (std::size_t r = 0; r < 3; ++r) {
    CHECK(dbeta[r] == T(0));
    CHECK(dgamma[r] == T(0));
  }
}

TEMPLATE_TEST_CASE("normalize_rows: shape mismatch throws before writing", "[eigen]", float, double) {
  using T = TestType;
  RowMat<T> z = RowMat<T>::Zero(3, 4);
  ColMat<T> p = ColMat<T>::Constant(3, 5, T(2));
  try {
    entmax::normalize_rows(entmax::Softmax{}, z, p);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("normalize_rows") != std::string::npos);
    CHECK(what.find("3x4") != std::string::npos);
    CHECK(what.find("3x5") != std::string::npos);
  }
  CHECK((p.array() == T(2)).all());
  RowMat<T> dz = RowMat<T>::Constant(2, 4, T(2));
  CHECK_THROWS_AS(entmax::normalize_rows_backward(entmax::Sparsemax{}, z, z, dz), std::invalid_argument);
  CHECK_THROWS_WITH(entmax::normalize_rows_backward(entmax::Sparsemax{}, z, z, dz),
                    Catch::Contains("normalize_rows_backward") && Catch::Contains("2x4"));
  CHECK((dz.array() == T(2)).all());
  std::vector<T> beta(3, T(1)), gamma(3, T(1));
  entmax::ASEntmax<T> pol(beta.data(), gamma.data(), 3);
  CHECK_THROWS_AS(entmax::normalize_rows_backward(pol, z, z, RowMat<T>(3, 3), dz), std::invalid_argument);
  CHECK((dz.array() == T(2)).all());
}
