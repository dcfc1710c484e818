// Checks shared by the row-kernel tests (test_softmax, test_sparsemax, test_entmax15): the
// NUMERICS.md properties of a row map, each against the long-double reference or an
// invariant — never against the kernel itself.
#pragma once

#include <entmax/entmax15.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>

#include <catch2/catch.hpp>

#include "golden.hpp"
#include "reference/reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace entmax_test {

enum class Map { softmax, sparsemax, entmax15 };

inline const char* name(Map m) {
  return m == Map::softmax ? "softmax" : m == Map::sparsemax ? "sparsemax" : "entmax15";
}
inline long double alpha_of(Map m) { return m == Map::softmax ? 1.0L : m == Map::sparsemax ? 2.0L : 1.5L; }

template <class T, class A = xsimd::default_arch>
entmax::RowStats<T> forward(Map m, const T* z, T* p, std::size_t n) {
  switch (m) {
    case Map::softmax:
      return entmax::softmax<T, A>(z, p, n);
    case Map::sparsemax:
      return entmax::sparsemax<T, A>(z, p, n);
    default:
      return entmax::entmax15<T, A>(z, p, n);
  }
}
template <class T, class A = xsimd::default_arch>
void backward(Map m, const T* p, const T* dp, T* dz, std::size_t n) {
  switch (m) {
    case Map::softmax:
      entmax::softmax_backward<T, A>(p, dp, dz, n);
      break;
    case Map::sparsemax:
      entmax::sparsemax_backward<T, A>(p, dp, dz, n);
      break;
    default:
      entmax::entmax15_backward<T, A>(p, dp, dz, n);
  }
}
template <class T, class A = xsimd::default_arch>
void from_stats(Map m, const T* z, const entmax::RowStats<T>& s, T* p, std::size_t n) {
  switch (m) {
    case Map::softmax:
      entmax::softmax_from_stats<T, A>(z, s, p, n);
      break;
    case Map::sparsemax:
      entmax::sparsemax_from_stats<T, A>(z, s, p, n);
      break;
    default:
      entmax::entmax15_from_stats<T, A>(z, s, p, n);
  }
}
inline ref::Vec reference(Map m, const ref::Vec& z) {
  switch (m) {
    case Map::softmax:
      return ref::softmax(z);
    case Map::sparsemax:
      return ref::sparsemax(z);
    default:
      return ref::entmax15(z);
  }
}

template <class T>
constexpr long double eps() {
  return static_cast<long double>(std::numeric_limits<T>::epsilon());
}

/// Every SIMD arch the compiler flags allow, for instantiating the kernels side by side.
using Archs = std::tuple<
#if XSIMD_WITH_AVX512BW
    xsimd::avx512bw,
#endif
#if XSIMD_WITH_AVX512F
    xsimd::avx512f,
#endif
#if XSIMD_WITH_FMA3_AVX2
    xsimd::fma3<xsimd::avx2>,
#endif
#if XSIMD_WITH_AVX2
    xsimd::avx2,
#endif
#if XSIMD_WITH_AVX
    xsimd::avx,
#endif
#if XSIMD_WITH_SSE4_2
    xsimd::sse4_2,
#endif
#if XSIMD_WITH_SSE2
    xsimd::sse2,
#endif
    xsimd::default_arch>;

/// Sizes around the batch widths 4, 8, 16 (and 2, for SSE2 double).
inline std::vector<std::size_t> small_sizes() {
  return {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257};
}

/// Score rows of a named family, seeded.
template <class T>
std::vector<T> make_row(const std::string& family, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<T> z(n);
  const T inf = std::numeric_limits<T>::infinity();
  auto gauss = [&](double s, double offset) {
    for (auto& v : z) v = static_cast<T>(offset + s * nd(g));
  };
  if (family == "gauss1")
    gauss(1.0, 0.0);
  else if (family == "gauss0.25")
    gauss(0.25, 0.0);
  else if (family == "gauss0.01")
    gauss(0.01, 0.0);
  else if (family == "gauss10")
    gauss(10.0, 0.0);
  else if (family == "offset1000")
    gauss(1.0, 1000.0);
  else if (family == "negative")
    gauss(1.0, -50.0);
  else if (family == "huge")
    gauss(1e30, 0.0);
  else if (family == "tiny")
    gauss(1e-30, 0.0);
  else if (family == "ties") {
    for (auto& v : z) v = static_cast<T>(std::floor(nd(g) * 2.0) / 2.0);
  } else if (family == "dominant") {
    gauss(0.1, 0.0);
    z[static_cast<std::size_t>(g() % n)] = T(20);
  } else if (family == "masked") {
    gauss(1.0, 0.0);
    for (auto& v : z)
      if (g() % 3 == 0) v = -inf;
    z[static_cast<std::size_t>(g() % n)] = T(0.5);
  } else if (family == "one_unmasked") {
    for (auto& v : z) v = -inf;
    z[static_cast<std::size_t>(g() % n)] = static_cast<T>(nd(g));
  } else {
    FAIL("unknown family " << family);
  }
  return z;
}

inline std::vector<std::string> families() {
  return {"gauss1", "gauss0.25", "gauss0.01", "gauss10",  "offset1000", "negative",
          "huge",   "tiny",      "ties",      "dominant", "masked",     "one_unmasked"};
}

/// Forward on z vs the long-double reference: |p − p_ref| ≤ 16ε, 0 ≤ p ≤ 1, |Σp − 1| ≤ 4ε
/// (float) / 16ε (double), support = number of non-zeros, RowStats rebuilds p, and (for the
/// sparse maps) exact zeros where the reference has zeros.
template <class T, class A = xsimd::default_arch>
void check_forward(Map m, const std::vector<T>& z, const std::string& what) {
  const std::size_t n = z.size();
  std::vector<T> p(n, T(-7));
  const entmax::RowStats<T> s = forward<T, A>(m, z.data(), p.data(), n);
  const ref::Vec r = reference(m, ref::widen(z));
  INFO(name(m) << " " << what << " n=" << n << " seed=" << Catch::rngSeed());
  long double sum = 0, worst = 0;
  std::size_t nonzero = 0, bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const long double d = std::fabs(static_cast<long double>(p[i]) - r[i]);
    worst = std::max(worst, d);
    if (!(d <= 16 * eps<T>()) || !(p[i] >= T(0) && p[i] <= T(1))) ++bad;
    if (m != Map::softmax && r[i] == 0 && p[i] != T(0)) ++bad;
    sum += p[i];
    nonzero += p[i] != T(0);
  }
  INFO("worst abs error " << static_cast<double>(worst) << " = " << static_cast<double>(worst / eps<T>())
                          << " eps");
  CHECK(bad == 0);
  INFO("sum - 1 = " << static_cast<double>((sum - 1) / eps<T>()) << " eps, tau " << s.tau << " support "
                    << s.support);
  CHECK(std::fabs(sum - 1) <= (sizeof(T) == 4 ? 4 : 16) * eps<T>());
  CHECK(s.support == nonzero);
  CHECK(s.max == *std::max_element(z.begin(), z.end()));
  std::vector<T> q(n);
  from_stats<T, A>(m, z.data(), s, q.data(), n);
  std::size_t diff = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (m == Map::softmax)
      diff += !(std::fabs(static_cast<long double>(q[i]) - p[i]) <= 16 * eps<T>());
    else
      diff += std::memcmp(&q[i], &p[i], sizeof(T)) != 0;  // bitwise for the sparse maps
  }
  CHECK(diff == 0);
}

/// Backward on p = map(z) vs the long-double formula, plus Σdz = 0 and the zero pattern.
template <class T, class A = xsimd::default_arch>
void check_backward(Map m, const std::vector<T>& z, std::uint64_t seed, const std::string& what) {
  const std::size_t n = z.size();
  std::vector<T> p(n), dp(n), dz(n, T(-7));
  forward<T, A>(m, z.data(), p.data(), n);
  std::mt19937_64 g(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (auto& v : dp) v = static_cast<T>(nd(g));
  backward<T, A>(m, p.data(), dp.data(), dz.data(), n);
  const ref::Vec r = ref::backward(ref::widen(p), ref::widen(dp), alpha_of(m));
  INFO(name(m) << " backward " << what << " n=" << n << " seed=" << Catch::rngSeed());
  long double worst = 0, sum = 0, abs_sum = 0, scale = 1;
  for (T v : dp) scale = std::max(scale, static_cast<long double>(std::fabs(v)));
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const long double d = std::fabs(static_cast<long double>(dz[i]) - r[i]);
    worst = std::max(worst, d);
    if (!(d <= 16 * eps<T>() * scale)) ++bad;
    if (p[i] == T(0) && dz[i] != T(0)) ++bad;
    sum += dz[i];
    abs_sum += std::fabs(static_cast<long double>(dz[i]));
  }
  INFO("worst abs error " << static_cast<double>(worst / eps<T>()) << " eps");
  CHECK(bad == 0);
  INFO("sum " << static_cast<double>(sum) << " abs_sum " << static_cast<double>(abs_sum) << " T size "
              << sizeof(T));
  CHECK(std::fabs(sum) <= 16 * eps<T>() * abs_sum);
}

/// Every sparse-or-dense property that needs only one map: run for sizes and families.
template <class T, class A = xsimd::default_arch>
void check_reference_sweep(Map m, const std::vector<std::size_t>& sizes) {
  std::uint64_t seed = Catch::rngSeed();
  for (std::size_t n : sizes)
    for (const auto& f : families()) {
      const std::vector<T> z = make_row<T>(f, n, ++seed);
      check_forward<T, A>(m, z, f);
      check_backward<T, A>(m, z, seed * 7 + 1, f);
    }
}

/// ulp distance between two finite values of the same sign (0 and ±0 are 0 apart).
template <class T>
long double ulp_distance(T a, T b) {
  if (a == b) return 0;
  const T u = std::nextafter(std::max(std::fabs(a), std::fabs(b)), std::numeric_limits<T>::infinity()) -
              std::max(std::fabs(a), std::fabs(b));
  return std::fabs(static_cast<long double>(a) - b) / u;
}

}  // namespace entmax_test

namespace entmax_test {

template <class T>
void check_large(Map m) {
  std::uint64_t seed = Catch::rngSeed() + 1000;
  for (std::size_t n : {1000u, 4096u, 8193u, 100000u, 1000000u})
    for (const char* f : {"gauss1", "gauss0.25", "masked"}) {
      if (n == 1000000u && std::string(f) == "masked") continue;
      const std::vector<T> z = make_row<T>(f, n, ++seed);
      check_forward<T>(m, z, f);
      check_backward<T>(m, z, seed, f);
    }
}

/// The golden float64 vectors of the PyTorch reference (op = name(m)): p and dz.
inline void check_golden(Map m) {
  const auto records = golden("golden_normalizers.txt", name(m));
  REQUIRE(records.size() >= 40);
  for (const auto& r : records) {
    const auto& zd = r.vec("z");
    const std::size_t n = zd.size();
    std::vector<double> z(zd.begin(), zd.end()), p(n), dz(n);
    const auto& dp = r.vec("dp");
    const auto& pg = r.vec("p");
    const auto& dzg = r.vec("dz");
    forward<double>(m, z.data(), p.data(), n);
    backward<double>(m, p.data(), dp.data(), dz.data(), n);
    double scale = 1;
    for (double v : dp) scale = std::max(scale, std::fabs(v));
    std::size_t bad_p = 0, bad_dz = 0;
    for (std::size_t i = 0; i < n; ++i) {
      bad_p += !(std::fabs(p[i] - pg[i]) <= 16 * std::numeric_limits<double>::epsilon());
      bad_dz += !(std::fabs(dz[i] - dzg[i]) <= 16 * std::numeric_limits<double>::epsilon() * scale);
    }
    INFO(r.describe());
    CHECK(bad_p == 0);
    CHECK(bad_dz == 0);
  }
}

template <class T, class A>
void check_arch(Map m) {
  std::uint64_t seed = Catch::rngSeed() + 77;
  std::vector<std::size_t> sizes = small_sizes();
  sizes.push_back(5000);
  for (std::size_t n : sizes)
    for (const char* f : {"gauss1", "gauss0.25", "masked", "ties", "huge"}) {
      const std::vector<T> z = make_row<T>(f, n, ++seed);
      check_forward<T, A>(m, z, f);
      check_backward<T, A>(m, z, seed, f);
    }
}

template <class Tuple, std::size_t... I>
void check_all_archs_impl(Map m, std::index_sequence<I...>) {
  (check_arch<float, std::tuple_element_t<I, Tuple>>(m), ...);
  (check_arch<double, std::tuple_element_t<I, Tuple>>(m), ...);
}
inline void check_all_archs(Map m) {
  check_all_archs_impl<Archs>(m, std::make_index_sequence<std::tuple_size<Archs>::value>{});
}

/// p(z + c) == p(z) bitwise when z + c is exact (z on a grid of 2^-8, c an integer).
template <class T>
void check_shift_invariance(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 3);
  for (std::size_t n : {1u, 7u, 16u, 33u, 1000u}) {
    std::vector<T> z(n), zc(n), p(n), pc(n);
    for (auto& v : z) v = static_cast<T>(static_cast<double>(static_cast<int>(g() % 4096) - 2048) / 256.0);
    for (T c : {T(1), T(-3), T(64), T(1000)}) {
      for (std::size_t i = 0; i < n; ++i) zc[i] = z[i] + c;
      const auto s = forward<T>(m, z.data(), p.data(), n);
      const auto sc = forward<T>(m, zc.data(), pc.data(), n);
      INFO(name(m) << " n=" << n << " c=" << c << " seed=" << Catch::rngSeed());
      CHECK(std::memcmp(p.data(), pc.data(), n * sizeof(T)) == 0);
      CHECK(s.tau == sc.tau);
      CHECK(s.support == sc.support);
    }
  }
}

/// Permuting z permutes p (≤ 4 ulp of the row's largest probability for values far below it).
template <class T>
void check_permutation(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 4);
  for (std::size_t n : {5u, 17u, 64u, 1000u, 4099u})
    for (const char* f : {"gauss1", "gauss0.25", "ties", "masked"}) {
      std::vector<T> z = make_row<T>(f, n, g()), zp(n), p(n), pp(n);
      std::vector<std::size_t> perm(n);
      for (std::size_t i = 0; i < n; ++i) perm[i] = i;
      std::shuffle(perm.begin(), perm.end(), g);
      for (std::size_t i = 0; i < n; ++i) zp[i] = z[perm[i]];
      forward<T>(m, z.data(), p.data(), n);
      forward<T>(m, zp.data(), pp.data(), n);
      long double worst = 0;
      for (std::size_t i = 0; i < n; ++i) worst = std::max(worst, ulp_distance(pp[i], p[perm[i]]));
      INFO(name(m) << " " << f << " n=" << n << " seed=" << Catch::rngSeed());
      CHECK(worst <= 4);
    }
}

template <class T>
void check_ties_and_trivial(Map m) {
  // n = 1 -> 1, for any finite score.
  for (T v : {T(0), T(-3.5), T(1e30), T(-1e30)}) {
    T p = T(-1);
    const auto s = forward<T>(m, &v, &p, 1);
    CHECK(p == T(1));
    CHECK(s.support == 1u);
  }
  // all equal -> 1/n within 1 ulp.
  for (std::size_t n : {2u, 3u, 5u, 7u, 16u, 17u, 100u, 1000u, 4097u, 100000u}) {
    for (T v : {T(0), T(-2.25), T(777)}) {
      std::vector<T> z(n, v), p(n);
      const auto s = forward<T>(m, z.data(), p.data(), n);
      const T expect = static_cast<T>(1.0L / static_cast<long double>(n));
      long double worst = 0;
      for (T x : p) worst = std::max(worst, ulp_distance(x, expect));
      INFO(name(m) << " all equal n=" << n);
      CHECK(worst <= 1);
      CHECK(s.support == n);
    }
  }
  // planted ties get bitwise equal mass.
  std::mt19937_64 g(Catch::rngSeed() + 5);
  for (std::size_t n : {9u, 33u, 500u}) {
    std::vector<T> z = make_row<T>("gauss1", n, g()), p(n);
    const std::size_t a = g() % n, b = (a + 1 + g() % (n - 1)) % n;
    z[b] = z[a];
    forward<T>(m, z.data(), p.data(), n);
    CHECK(p[a] == p[b]);
  }
}

/// −inf entries are exact zeros and the rest equals the map on the compacted row (≤ 4 ulp).
template <class T>
void check_masked(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 6);
  const T inf = std::numeric_limits<T>::infinity();
  for (std::size_t n : {2u, 3u, 8u, 17u, 33u, 1000u, 5000u}) {
    std::vector<T> z = make_row<T>("gauss1", n, g()), p(n), compact, pc;
    std::vector<std::size_t> keep;
    for (std::size_t i = 0; i < n; ++i) {
      if (i != n / 2 && g() % 2 == 0)
        z[i] = -inf;
      else
        keep.push_back(i);
    }
    for (std::size_t i : keep) compact.push_back(z[i]);
    pc.resize(compact.size());
    const auto s = forward<T>(m, z.data(), p.data(), n);
    const auto sc = forward<T>(m, compact.data(), pc.data(), compact.size());
    std::size_t nonzero_masked = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (z[i] == -inf) nonzero_masked += std::memcmp(&p[i], "\0\0\0\0\0\0\0\0", sizeof(T)) != 0;
    long double worst = 0;
    for (std::size_t j = 0; j < keep.size(); ++j) worst = std::max(worst, ulp_distance(p[keep[j]], pc[j]));
    INFO(name(m) << " n=" << n << " seed=" << Catch::rngSeed());
    CHECK(nonzero_masked == 0);
    CHECK(worst <= 4);
    CHECK(s.support == sc.support);
    // gradient: exactly zero on masked entries.
    std::vector<T> dp(n, T(1)), dz(n);
    for (std::size_t i = 0; i < n; ++i) dp[i] = static_cast<T>(std::sin(static_cast<double>(i)));
    backward<T>(m, p.data(), dp.data(), dz.data(), n);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (z[i] == -inf) bad += dz[i] != T(0);
    CHECK(bad == 0);
  }
}

/// Special rows: empty, all −inf, NaN or +inf at every position.
template <class T>
void check_special_rows(Map m) {
  const T inf = std::numeric_limits<T>::infinity();
  const T nan = std::numeric_limits<T>::quiet_NaN();
  {  // n = 0: nothing written
    T z = T(1), p = T(42);
    const auto s = forward<T>(m, &z, &p, 0);
    CHECK(p == T(42));
    CHECK(s.support == 0u);
  }
  for (std::size_t n : {1u, 3u, 16u, 17u, 100u}) {
    std::vector<T> z(n, -inf), p(n, T(7)), dp(n, T(1)), dz(n, T(7));
    const auto s = forward<T>(m, z.data(), p.data(), n);
    CHECK(s.support == 0u);
    CHECK(s.max == -inf);
    CHECK(std::all_of(p.begin(), p.end(), [](T v) { return v == T(0); }));
    backward<T>(m, p.data(), dp.data(), dz.data(), n);
    CHECK(std::all_of(dz.begin(), dz.end(), [](T v) { return v == T(0); }));
    std::vector<T> q(n, T(7));
    from_stats<T>(m, z.data(), s, q.data(), n);
    CHECK(std::all_of(q.begin(), q.end(), [](T v) { return v == T(0); }));
  }
  for (std::size_t n : {1u, 2u, 5u, 16u, 17u, 40u}) {
    for (T bad : {nan, inf}) {
      for (std::size_t pos = 0; pos < n; ++pos) {
        std::vector<T> z = make_row<T>("gauss1", n, pos + 11), p(n, T(7));
        if (n > 2) z[(pos + 1) % n] = -inf;
        z[pos] = bad;
        const auto s = forward<T>(m, z.data(), p.data(), n);
        INFO(name(m) << " n=" << n << " bad value " << bad << " at " << pos);
        CHECK(std::all_of(p.begin(), p.end(), [](T v) { return std::isnan(v); }));
        CHECK(s.support == 0u);
        std::vector<T> q(n, T(7));
        from_stats<T>(m, z.data(), s, q.data(), n);
        CHECK(std::all_of(q.begin(), q.end(), [](T v) { return std::isnan(v); }));
        // The NaN row's gradient is NaN too (never a finite, plausible-looking one).
        std::vector<T> dp(n, T(1)), dz(n, T(7));
        dp[0] = T(2);
        backward<T>(m, p.data(), dp.data(), dz.data(), n);
        CHECK(std::all_of(dz.begin(), dz.end(), [](T v) { return std::isnan(v); }));
      }
    }
  }
}

/// z and p alias; dp and dz alias: results bitwise equal to the out-of-place ones.
template <class T>
void check_in_place(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 8);
  for (std::size_t n : {1u, 3u, 17u, 33u, 1000u, 70000u})
    for (const char* f : {"gauss1", "gauss0.25", "masked"}) {
      const std::vector<T> z = make_row<T>(f, n, g());
      std::vector<T> p(n), inplace = z;
      const auto s = forward<T>(m, z.data(), p.data(), n);
      const auto si = forward<T>(m, inplace.data(), inplace.data(), n);
      INFO(name(m) << " " << f << " n=" << n);
      CHECK(std::memcmp(p.data(), inplace.data(), n * sizeof(T)) == 0);
      CHECK(s.support == si.support);
      std::vector<T> dp(n), dz(n);
      for (auto& v : dp) v = static_cast<T>(static_cast<double>(g() % 1000) / 250.0 - 2.0);
      std::vector<T> dpi = dp;
      backward<T>(m, p.data(), dp.data(), dz.data(), n);
      backward<T>(m, p.data(), dpi.data(), dpi.data(), n);
      CHECK(std::memcmp(dz.data(), dpi.data(), n * sizeof(T)) == 0);
      std::vector<T> q = z;
      from_stats<T>(m, q.data(), s, q.data(), n);
      if (m != Map::softmax) CHECK(std::memcmp(q.data(), p.data(), n * sizeof(T)) == 0);
    }
}

/// ⟨a, J b⟩ = ⟨b, J a⟩ (J symmetric), dp = c·1 gives dz = 0.
template <class T>
void check_jacobian_identities(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 9);
  std::normal_distribution<double> nd;
  for (std::size_t n : {2u, 5u, 17u, 64u, 1000u})
    for (const char* f : {"gauss1", "gauss0.25", "masked", "dominant"}) {
      const std::vector<T> z = make_row<T>(f, n, g());
      std::vector<T> p(n), a(n), b(n), ja(n), jb(n);
      forward<T>(m, z.data(), p.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        a[i] = static_cast<T>(nd(g));
        b[i] = static_cast<T>(nd(g));
      }
      backward<T>(m, p.data(), a.data(), ja.data(), n);
      backward<T>(m, p.data(), b.data(), jb.data(), n);
      long double ajb = 0, bja = 0, mag = 0;
      for (std::size_t i = 0; i < n; ++i) {
        ajb += static_cast<long double>(a[i]) * jb[i];
        bja += static_cast<long double>(b[i]) * ja[i];
        mag += std::fabs(static_cast<long double>(a[i]) * jb[i]) +
               std::fabs(static_cast<long double>(b[i]) * ja[i]);
      }
      INFO(name(m) << " " << f << " n=" << n);
      CHECK(std::fabs(ajb - bja) <= 16 * eps<T>() * mag);
      for (T c : {T(1), T(-3.7), T(1000)}) {
        std::vector<T> dp(n, c), dz(n);
        backward<T>(m, p.data(), dp.data(), dz.data(), n);
        long double worst = 0;
        for (T v : dz) worst = std::max(worst, static_cast<long double>(std::fabs(v)));
        CHECK(worst <= 16 * eps<T>() * std::fabs(c));
      }
    }
}

/// Backward vs central finite differences of L(z) = ⟨dp, map(z)⟩ computed in double, at
/// coordinates whose perturbation leaves the support unchanged. Relative 1e-6 (double) /
/// 1e-4 (float against the double differences).
template <class T>
void check_finite_differences(Map m) {
  std::mt19937_64 g(Catch::rngSeed() + 10);
  std::normal_distribution<double> nd;
  for (std::size_t n : {2u, 3u, 8u, 17u, 50u})
    for (const char* f : {"gauss1", "gauss0.25", "masked"}) {
      const std::vector<double> zd = make_row<double>(f, n, g());
      std::vector<double> dpd(n), pd(n);
      for (auto& v : dpd) v = nd(g);
      std::vector<T> z(zd.begin(), zd.end()), p(n), dp(dpd.begin(), dpd.end()), dz(n);
      std::vector<double> zr(z.begin(), z.end());  // the same (rounded) scores in double
      forward<T>(m, z.data(), p.data(), n);
      backward<T>(m, p.data(), dp.data(), dz.data(), n);
      const double h = 1e-6;
      auto loss = [&](const std::vector<double>& x, std::size_t* support) {
        std::vector<double> q(n);
        const auto s = forward<double>(m, x.data(), q.data(), n);
        if (support) *support = s.support;
        double l = 0;
        for (std::size_t i = 0; i < n; ++i) l += static_cast<double>(dp[i]) * q[i];
        return l;
      };
      std::size_t s0 = 0;
      loss(zr, &s0);
      double scale = 0;
      for (T v : dz) scale = std::max(scale, std::fabs(static_cast<double>(v)));
      for (std::size_t i = 0; i < n; ++i) {
        if (std::isinf(zr[i])) continue;
        std::vector<double> zp = zr, zm = zr;
        zp[i] += h;
        zm[i] -= h;
        std::size_t sp = 0, sm = 0;
        const double fd = (loss(zp, &sp) - loss(zm, &sm)) / (2 * h);
        if (sp != s0 || sm != s0) continue;  // at the support boundary
        INFO(name(m) << " " << f << " n=" << n << " i=" << i << " fd=" << fd << " dz=" << dz[i]);
        CHECK(std::fabs(fd - static_cast<double>(dz[i])) <=
              (sizeof(T) == 4 ? 1e-4 : 1e-6) * std::max(scale, 1e-2));
      }
    }
}

}  // namespace entmax_test

/// Registers the shared row-map test cases for map M (an entmax_test::Map).
#define ENTMAX_ROW_MAP_TESTS(M)                                                                              \
  TEMPLATE_TEST_CASE("agrees with the long-double reference at sizes around SIMD widths", "[ref]", float,    \
                     double) {                                                                               \
    entmax_test::check_reference_sweep<TestType>(M, entmax_test::small_sizes());                             \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("agrees with the reference on large rows", "[ref][large]", float, double) {             \
    entmax_test::check_large<TestType>(M);                                                                   \
  }                                                                                                          \
  TEST_CASE("agrees with the golden float64 vectors", "[golden]") { entmax_test::check_golden(M); }          \
  TEST_CASE("every SIMD arch agrees with the reference", "[arch]") { entmax_test::check_all_archs(M); }      \
  TEMPLATE_TEST_CASE("shift invariance is bitwise", "[props]", float, double) {                              \
    entmax_test::check_shift_invariance<TestType>(M);                                                        \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("permutation equivariance", "[props]", float, double) {                                 \
    entmax_test::check_permutation<TestType>(M);                                                             \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("ties, all-equal rows and n = 1", "[props]", float, double) {                           \
    entmax_test::check_ties_and_trivial<TestType>(M);                                                        \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("masked entries", "[props]", float, double) { entmax_test::check_masked<TestType>(M); } \
  TEMPLATE_TEST_CASE("empty, fully masked and NaN/+inf rows", "[props]", float, double) {                    \
    entmax_test::check_special_rows<TestType>(M);                                                            \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("in-place forward and backward", "[props]", float, double) {                            \
    entmax_test::check_in_place<TestType>(M);                                                                \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("Jacobian symmetric, constant dp gives zero", "[backward]", float, double) {            \
    entmax_test::check_jacobian_identities<TestType>(M);                                                     \
  }                                                                                                          \
  TEMPLATE_TEST_CASE("backward matches central finite differences", "[backward]", float, double) {           \
    entmax_test::check_finite_differences<TestType>(M);                                                      \
  }
