// Large-n properties (n = 1e5 and 1e6) of every row map, float and double: output on the
// simplex with Σp within the NUMERICS.md bound (double accumulation inside the kernels),
// masked entries exactly zero, agreement with the long-double references, equality of
// entmax_bisect at α = 2 / 1.5 with sparsemax / entmax15, and permutation equivariance.
#include <entmax/entmax15.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include <reference/reference.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

namespace ref = entmax_test::ref;

template <class T>
using Map = std::function<entmax::RowStats<T>(const T*, T*, std::size_t)>;

struct Regime {
  const char* name;
  double sd;      // scores N(0, sd²)
  double masked;  // fraction of -inf entries
};

const Regime kRegimes[] = {
    {"sparse N(0,1)", 1.0, 0.0}, {"dense N(0,0.25^2)", 0.25, 0.0}, {"masked 30%", 1.0, 0.3}};

template <class T>
std::vector<T> make_row(std::size_t n, const Regime& r, std::mt19937_64& rng) {
  std::normal_distribution<double> g(0.0, r.sd);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<T> z(n);
  for (T& v : z) v = u(rng) < r.masked ? -std::numeric_limits<T>::infinity() : static_cast<T>(g(rng));
  return z;
}

template <class T>
T ulp_of(T x) {
  x = std::fabs(x);
  return std::nextafter(x, std::numeric_limits<T>::infinity()) - x;
}

// Σp, [0, 1], masked zeros, support count.
template <class T>
void check_simplex(const std::vector<T>& z, const std::vector<T>& p, const entmax::RowStats<T>& st) {
  const long double eps = std::numeric_limits<T>::epsilon();
  long double sum = 0;
  std::size_t nonzero = 0, bad = 0, masked_nonzero = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (!(p[i] >= T(0) && p[i] <= T(1))) ++bad;
    if (z[i] == -std::numeric_limits<T>::infinity() && p[i] != T(0)) ++masked_nonzero;
    sum += p[i];
    nonzero += p[i] != T(0);
  }
  CHECK(bad == 0);
  CHECK(masked_nonzero == 0);
  const long double bound = (sizeof(T) == 4 ? 4 : 16) * eps;
  INFO("sum - 1 = " << static_cast<double>(sum - 1) << " = " << static_cast<double>((sum - 1) / eps)
                    << " eps");
  CHECK(std::fabs(sum - 1) <= bound);
  CHECK(st.support == nonzero);
}

}  // namespace

TEMPLATE_TEST_CASE("large n: simplex, reference agreement and permutation equivariance", "[large_n]", float,
                   double) {
  using T = TestType;
  const long double eps = std::numeric_limits<T>::epsilon();
  std::mt19937_64 rng(Catch::rngSeed());
  INFO("seed " << Catch::rngSeed());

  struct Named {
    std::string name;
    Map<T> f;
    std::function<ref::Vec(const ref::Vec&)> reference;  // empty: no reference at this size
  };
  const std::vector<Named> maps = {
      {"softmax", [](const T* z, T* p, std::size_t n) { return entmax::softmax(z, p, n); },
       [](const ref::Vec& z) { return ref::softmax(z); }},
      {"sparsemax", [](const T* z, T* p, std::size_t n) { return entmax::sparsemax(z, p, n); },
       [](const ref::Vec& z) { return ref::sparsemax(z); }},
      {"entmax15", [](const T* z, T* p, std::size_t n) { return entmax::entmax15(z, p, n); },
       [](const ref::Vec& z) { return ref::entmax15(z); }},
      {"entmax_bisect(1.3)",
       [](const T* z, T* p, std::size_t n) { return entmax::entmax_bisect(z, p, n, T(1.3)); }, nullptr},
      {"entmax_bisect(2.5)",
       [](const T* z, T* p, std::size_t n) { return entmax::entmax_bisect(z, p, n, T(2.5)); }, nullptr},
  };

  for (std::size_t n : std::vector<std::size_t>{100000, 1000000}) {
    for (const Regime& r : kRegimes) {
      const std::vector<T> z = make_row<T>(n, r, rng);
      std::vector<std::size_t> perm(n);
      std::iota(perm.begin(), perm.end(), std::size_t{0});
      std::shuffle(perm.begin(), perm.end(), rng);
      std::vector<T> zp(n);
      for (std::size_t k = 0; k < n; ++k) zp[k] = z[perm[k]];

      for (const Named& m : maps) {
        INFO(m.name << " n=" << n << " " << r.name);
        std::vector<T> p(n), pp(n);
        const entmax::RowStats<T> st = m.f(z.data(), p.data(), n);
        check_simplex(z, p, st);

        // Permutation: p(z∘π) = p(z)∘π within 4 ulp of the larger value (and of 1 for values
        // reached by cancellation below the threshold's rounding).
        m.f(zp.data(), pp.data(), n);
        T worst = 0;
        std::size_t over = 0;
        for (std::size_t k = 0; k < n; ++k) {
          const T a = pp[k], b = p[perm[k]];
          const T d = std::fabs(a - b);
          const T tol = 4 * ulp_of(std::max(std::fabs(a), std::fabs(b)));
          if (d > tol && d > 4 * std::numeric_limits<T>::epsilon() * std::fabs(st.tau)) ++over;
          worst = std::max(worst, d);
        }
        INFO("largest permutation difference " << worst);
        CHECK(over == 0);

        if (m.reference) {
          const ref::Vec pr = m.reference(ref::widen(z));
          long double err = 0;
          for (std::size_t i = 0; i < n; ++i)
            err = std::max(err, std::fabs(static_cast<long double>(p[i]) - pr[i]));
          INFO("max |p - reference| = " << static_cast<double>(err / eps) << " eps");
          CHECK(err <= 16 * eps);
        }
      }

      // entmax_bisect at α = 2 and 1.5 equals the exact kernels (8 ε).
      std::vector<T> a(n), b(n);
      entmax::sparsemax(z.data(), a.data(), n);
      entmax::entmax_bisect(z.data(), b.data(), n, T(2));
      long double d2 = 0, d15 = 0;
      for (std::size_t i = 0; i < n; ++i) d2 = std::max(d2, std::fabs(static_cast<long double>(a[i]) - b[i]));
      entmax::entmax15(z.data(), a.data(), n);
      entmax::entmax_bisect(z.data(), b.data(), n, T(1.5));
      for (std::size_t i = 0; i < n; ++i)
        d15 = std::max(d15, std::fabs(static_cast<long double>(a[i]) - b[i]));
      INFO("n=" << n << " " << r.name << ": bisect(2) vs sparsemax " << static_cast<double>(d2 / eps)
                << " eps, bisect(1.5) vs entmax15 " << static_cast<double>(d15 / eps) << " eps");
      CHECK(d2 <= 8 * eps);
      CHECK(d15 <= 8 * eps);
    }
  }
}

TEMPLATE_TEST_CASE("large n: all-equal and single-survivor rows", "[large_n]", float, double) {
  using T = TestType;
  const std::size_t n = 1000000;
  std::vector<T> z(n, T(-3.5)), p(n);
  for (auto f : std::vector<Map<T>>{
           [](const T*x, T*y, std::size_t m) { return entmax::softmax(x, y, m); },
           [](const T*x, T*y, std::size_t m) { return entmax::sparsemax(x, y, m); },
           [](const T*x, T*y, std::size_t m) { return entmax::entmax15(x, y, m); },
           [](const T*x, T*y, std::size_t m) { return entmax::entmax_bisect(x, y, m, T(1.75)); }}) {
    // All equal: exactly 1/n everywhere (1 ulp).
    std::fill(z.begin(), z.end(), T(-3.5));
    const entmax::RowStats<T> st = f(z.data(), p.data(), n);
    const T expect = T(1) / static_cast<T>(n);
    std::size_t off = 0;
    for (T v : p) off += std::fabs(v - expect) > ulp_of(expect);
    CHECK(off == 0);
    CHECK(st.support == n);
    // All -inf but one: a one-hot row.
    std::fill(z.begin(), z.end(), -std::numeric_limits<T>::infinity());
    z[n - 3] = T(1e30);
    f(z.data(), p.data(), n);
    CHECK(p[n - 3] == T(1));
    CHECK(std::count(p.begin(), p.end(), T(0)) == static_cast<std::ptrdiff_t>(n - 1));
  }
}
