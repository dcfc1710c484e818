// Tests of entmax/sparsemax.hpp: the shared row-map properties (row_map_checks.hpp) for sparsemax.
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include "row_map_checks.hpp"

ENTMAX_ROW_MAP_TESTS(entmax_test::Map::sparsemax)

namespace {

// Rows reduced from fuzz findings: one max, 100–300 copies of a score below it (some rows also
// with near-ties one ulp below) and a Gaussian rest further down. The support is deep
// (support·|τ| ≈ 10–300), so τ rounded to T alone leaves Σp up to support·ulp(τ)/2 off; with
// a wide gap the max takes most of the mass, and rescaling p to fix Σp would move it by more
// than its own bound.
template <class T>
std::vector<T> deep_tie_row(std::mt19937_64& g, std::size_t n, std::size_t ties) {
  std::normal_distribution<double> nd(0.0, 1.0);
  const double gap = static_cast<double>(1 + g() % 126) / 128.0;  // max − tied score
  const T tie = static_cast<T>(1.0 - gap);
  std::vector<T> z(n);
  for (auto& v : z) v = static_cast<T>(static_cast<double>(tie) - 0.05 - 0.5 * std::fabs(nd(g)));
  for (std::size_t i = 0; i < ties; ++i) z[i] = tie;
  if (g() % 2 == 0)
    for (std::size_t i = ties; i < ties + ties / 4; ++i) z[i] = std::nextafter(tie, T(0));
  z[ties + ties / 2] = T(1);
  std::shuffle(z.begin(), z.end(), g);
  return z;
}

template <class T>
void check_deep_ties(entmax_test::Map m) {
  const long double eps = std::numeric_limits<T>::epsilon();
  const long double tol = (sizeof(T) == 4 ? 4 : 16) * eps;
  std::mt19937_64 g(Catch::rngSeed() + 31);
  long double worst = 0, worst_error = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const std::size_t ties = 100 + g() % 201;
    const std::size_t n = ties + ties / 2 + 1 + g() % (trial % 4 == 0 ? 4000 : 300);
    const std::vector<T> z = deep_tie_row<T>(g, n, ties);
    std::vector<T> p(n, T(-7));
    const entmax::RowStats<T> s = entmax_test::forward<T>(m, z.data(), p.data(), n);
    const entmax_test::ref::Vec r = entmax_test::reference(m, entmax_test::ref::widen(z));
    long double sum = 0, error = 0;
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += p[i];
      nonzero += p[i] != T(0);
      error = std::max(error, std::fabs(static_cast<long double>(p[i]) - r[i]));
    }
    INFO(entmax_test::name(m) << " trial=" << trial << " n=" << n << " ties=" << ties << " support="
                              << s.support << " tau=" << s.tau << " seed=" << Catch::rngSeed());
    worst = std::max(worst, std::fabs(sum - 1) / eps);
    worst_error = std::max(worst_error, error / eps);
    CHECK(std::fabs(sum - 1) <= tol);
    CHECK(error <= 16 * eps);
    CHECK(s.support == nonzero);
    std::vector<T> q = z;  // from_stats, in place: bitwise equal to the forward
    entmax_test::from_stats<T>(m, q.data(), s, q.data(), n);
    CHECK(std::memcmp(q.data(), p.data(), n * sizeof(T)) == 0);
  }
  INFO("worst |sum - 1| = " << static_cast<double>(worst) << " eps, worst |p - reference| = "
                            << static_cast<double>(worst_error) << " eps");
  CHECK(worst <= tol / eps);
  CHECK(worst_error <= 16);
}

}  // namespace

TEMPLATE_TEST_CASE("sum and entries within tolerance on rows with many ties below the max (fuzz findings)",
                   "[props]", float, double) {
  check_deep_ties<TestType>(entmax_test::Map::sparsemax);
  check_deep_ties<TestType>(entmax_test::Map::entmax15);
}

namespace {

// A level of tied scores exactly at the threshold (reduced from entmax-1.5 fuzz findings): 64
// scores at the max, 117 at max − gap where the exact threshold sits (their p is exactly 0;
// gap = 1/64 for sparsemax, 1/4 for entmax-1.5), the rest on a 1/1024 grid further down. The
// search may reach τ by different paths for shifted copies of the row; the output may not
// depend on it: every exact shift gives bitwise the same p, and p = 1/64 on the max.
template <class T>
void check_tie_level_at_threshold(entmax_test::Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 41);
  const T top = T(0.9921875), gap = m == entmax_test::Map::sparsemax ? T(1) / T(64) : T(0.25);
  for (int trial = 0; trial < 200; ++trial) {
    const std::size_t rest = g() % 400;
    std::vector<T> z(64, top);
    z.insert(z.end(), 117, top - gap);
    for (std::size_t i = 0; i < rest; ++i) z.push_back(top - gap - T(1 + g() % 4096) / T(1024));
    std::shuffle(z.begin(), z.end(), g);
    const std::size_t n = z.size();
    std::vector<T> p(n), q(n);
    const entmax::RowStats<T> s = entmax_test::forward<T>(m, z.data(), p.data(), n);
    INFO(entmax_test::name(m) << " trial=" << trial << " n=" << n << " seed=" << Catch::rngSeed());
    CHECK(s.support == 64u);
    CHECK(std::count(p.begin(), p.end(), T(1) / T(64)) == 64);
    for (T c : {T(0.5), T(-0.5), T(3), T(-7.25), T(256)}) {
      std::vector<T> zc = z;
      for (T& v : zc) v += c;  // exact: every value is a multiple of 1/1024 below 2^10
      entmax_test::forward<T>(m, zc.data(), q.data(), n);
      INFO("shift " << c);
      CHECK(std::memcmp(p.data(), q.data(), n * sizeof(T)) == 0);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("a tie level exactly at the threshold: p independent of exact shifts", "[props]", float,
                   double) {
  check_tie_level_at_threshold<TestType>(entmax_test::Map::sparsemax);
  check_tie_level_at_threshold<TestType>(entmax_test::Map::entmax15);
}

namespace {

// Rows that span several blocks of the candidate collection (32 KiB: 8192 floats, 4096
// doubles) and put the large scores where the running bound is weakest.
template <class T>
std::vector<T> block_row(const std::string& kind, std::size_t n, std::mt19937_64& g) {
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> z(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = static_cast<double>(i) / static_cast<double>(n);
    if (kind == "rising")  // every block beats the bound of the earlier ones
      z[i] = static_cast<T>(8.0 * x + 0.25 * nd(g));
    else if (kind == "falling")
      z[i] = static_cast<T>(-8.0 * x + 0.25 * nd(g));
    else
      z[i] = static_cast<T>(nd(g));
  }
  if (kind == "late_max") z[n - 1 - static_cast<std::size_t>(g() % 7)] = T(6);
  return z;
}

template <class T>
void check_block_rows(entmax_test::Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 77);
  for (std::size_t n : {4095u, 4096u, 4097u, 8191u, 8192u, 8193u, 16385u, 3u * 8192u + 7u})
    for (const char* kind : {"rising", "falling", "late_max", "gauss"}) {
      const std::vector<T> z = block_row<T>(kind, n, g);
      entmax_test::check_forward<T>(m, z, kind);  // reference, sum, support, from_stats
      std::vector<T> p(n), inplace = z;
      entmax_test::forward<T>(m, z.data(), p.data(), n);
      entmax_test::forward<T>(m, inplace.data(), inplace.data(), n);
      INFO(entmax_test::name(m) << " " << kind << " n=" << n << " seed=" << Catch::rngSeed());
      CHECK(std::memcmp(p.data(), inplace.data(), n * sizeof(T)) == 0);
    }
}

// NaN or +inf after the first block (where the row is read once, with the bound of the earlier
// blocks) still gives a NaN row.
template <class T>
void check_late_invalid(entmax_test::Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 78);
  const std::size_t n = 3 * 8192 + 5;
  for (T bad : {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()})
    for (std::size_t pos : {0u, 4095u, 4096u, 8191u, 8192u, 8200u, 20000u, 3u * 8192u + 4u}) {
      std::vector<T> z = block_row<T>("gauss", n, g), p(n, T(7));
      z[pos] = bad;
      const entmax::RowStats<T> s = entmax_test::forward<T>(m, z.data(), p.data(), n);
      INFO(entmax_test::name(m) << " bad=" << bad << " pos=" << pos << " seed=" << Catch::rngSeed());
      CHECK(s.support == 0u);
      CHECK(std::all_of(p.begin(), p.end(), [](T v) { return std::isnan(v); }));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("rows over several candidate blocks: reference, in place, from_stats", "[props]", float,
                   double) {
  check_block_rows<TestType>(entmax_test::Map::sparsemax);
  check_block_rows<TestType>(entmax_test::Map::entmax15);
}

TEMPLATE_TEST_CASE("NaN or +inf in a later candidate block gives a NaN row", "[props]", float, double) {
  check_late_invalid<TestType>(entmax_test::Map::sparsemax);
  check_late_invalid<TestType>(entmax_test::Map::entmax15);
}
