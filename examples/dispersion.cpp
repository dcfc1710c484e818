// dispersion: why sparse attention does not fade with length, in numbers.
//
// Four demonstrations of the theory in Vasylenko et al., "Long-Context Generalization with Sparse
// Attention" (arXiv 2506.16640), each computed by this library at run time:
//  1. one target Δ above n − 1 equal distractors: the target's probability under softmax, scalable
//     softmax, sparsemax, 1.5-entmax and ASEntmax, and the threshold Δ* = k^{1−α}/(α−1) above which
//     α-entmax gives each of k targets exactly 1/k whatever n is;
//  2. appending tokens scored below the entmax threshold leaves every entmax probability bit-identical,
//     while softmax lowers all of them;
//  3. normalised entropy H(p)/log n versus n on N(0, 1) scores (softmax → 1: complete dispersion);
//  4. a target at 3 among N(0, 1) distractors: fixed-temperature entmax loses it as the largest
//     distractors overtake it, and the ASEntmax scale s = δ + β·log(n+1)^γ controls the support size.
// Prints tables and writes them as CSV (scripts/plot_examples draws the plots). --check runs the
// same computations for n ≤ 2^16 and asserts the claims.
#include <entmax/asentmax.hpp>
#include <entmax/entmax15.hpp>
#include <entmax/entmax_bisect.hpp>
#include <entmax/scalable_softmax.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>

#include "common/claims.hpp"
#include "common/cli.hpp"
#include "common/table.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

namespace ex = entmax_examples;
using entmax::RowStats;

template <class T>
using RowFn = std::function<RowStats<T>(const T*, T*, std::size_t)>;

/// ASEntmax parameters of the demonstrations: s = delta + beta * log(npos)^gamma, npos = n + 1.
/// delta = 1 is the authors' fixed value; gamma > 0 sharpens with length, gamma < 0 damps.
constexpr double kBeta = 1.0;
constexpr double kGammaUp = 0.5;
constexpr double kGammaDown = -0.5;
constexpr double kDelta = 1.0;
/// Scalable softmax: softmax(s * log(npos) * z) with s = 1 (the authors initialise s near 1).
constexpr double kSsmaxS = 1.0;

template <class T>
RowFn<T> asentmax_fn(double gamma) {
  return [gamma](const T* z, T* p, std::size_t n) {
    return entmax::asentmax(z, p, n, T(1.5), T(kBeta), T(gamma), T(kDelta), n + 1);
  };
}

template <class T>
struct Method {
  std::string name;
  RowFn<T> fn;
};

/// The five maps of demonstrations 1 and 3.
template <class T>
std::vector<Method<T>> five_maps() {
  return {
      {"softmax", [](const T* z, T* p, std::size_t n) { return entmax::softmax(z, p, n); }},
      {"ssmax",
       [](const T* z, T* p, std::size_t n) { return entmax::scalable_softmax(z, p, n, T(kSsmaxS), n + 1); }},
      {"sparsemax", [](const T* z, T* p, std::size_t n) { return entmax::sparsemax(z, p, n); }},
      {"entmax15", [](const T* z, T* p, std::size_t n) { return entmax::entmax15(z, p, n); }},
      {"asentmax", asentmax_fn<T>(kGammaUp)},
  };
}

/// α-entmax through the library's dedicated kernel where there is one.
template <class T>
RowStats<T> entmax_alpha(const T* z, T* p, std::size_t n, double alpha) {
  if (alpha == 1.5) return entmax::entmax15(z, p, n);
  if (alpha == 2.0) return entmax::sparsemax(z, p, n);
  return entmax::entmax_bisect(z, p, n, T(alpha));
}

std::vector<std::size_t> lengths(int max_log2) {
  std::vector<std::size_t> ns;
  for (int e = 6; e <= max_log2; ++e) ns.push_back(std::size_t{1} << e);
  return ns;
}

double dbl(std::size_t n) { return static_cast<double>(n); }

/// Shannon entropy in nats, accumulated in long double.
template <class T>
double entropy(const std::vector<T>& p) {
  long double h = 0;
  for (T v : p)
    if (v > T(0)) h -= static_cast<long double>(v) * std::log(static_cast<long double>(v));
  return static_cast<double>(h);
}

// ---------------------------------------------------------------------------------------------
// 1. Two-level scores: k targets at Δ, n − k distractors at 0.

template <class T>
struct TwoLevel {
  T target;             // probability of the first target
  T max_distractor;     // largest probability among the distractors
  std::size_t support;  // reported by the library
};

template <class T>
TwoLevel<T> two_level(const RowFn<T>& f, std::size_t n, std::size_t k, T delta) {
  std::vector<T> z(n, T(0)), p(n);
  std::fill(z.begin(), z.begin() + static_cast<std::ptrdiff_t>(k), delta);
  const RowStats<T> s = f(z.data(), p.data(), n);
  T md = 0;
  for (std::size_t i = k; i < n; ++i) md = std::max(md, p[i]);
  return {p[0], md, s.support};
}

/// Closed form of softmax's target probability, long double: e^{cΔ} / (e^{cΔ} + n − 1).
double softmax_two_level_exact(std::size_t n, double c_delta) {
  const long double e = std::exp(static_cast<long double>(c_delta));
  return static_cast<double>(e / (e + static_cast<long double>(n) - 1.0L));
}

template <class T>
void check_two_level(ex::Claims& claims, const std::vector<std::size_t>& ns, const char* tname) {
  const auto maps = five_maps<T>();
  const T rel_tol = std::is_same_v<T, float> ? T(1e-5) : T(1e-12);
  // Exactly 1 for every n once Δ reaches the threshold (2 for 1.5-entmax, 1 for sparsemax).
  for (const double delta : {2.0, 2.5, 3.0, 5.0}) {
    for (const char* name : {"entmax15", "asentmax", "sparsemax"}) {
      const auto& m =
          *std::find_if(maps.begin(), maps.end(), [&](const Method<T>& x) { return x.name == name; });
      bool ok = true;
      std::size_t bad_n = 0;
      for (std::size_t n : ns) {
        const TwoLevel<T> r = two_level(m.fn, n, 1, T(delta));
        if (!(r.target == T(1) && r.max_distractor == T(0) && r.support == 1)) {
          ok = false;
          bad_n = n;
          break;
        }
      }
      claims.claim(
          ok,
          "[%s] %s: target probability == 1 exactly, distractors 0, support 1 at Δ = %g for n = %zu..%zu%s",
          tname, name, delta, ns.front(), ns.back(),
          ok ? "" : (" (fails at n = " + std::to_string(bad_n) + ")").c_str());
    }
  }
  // Below the threshold α-entmax still keeps p_target >= ((α−1)Δ)^{1/(α−1)} at every n: the
  // distractors' common value (α−1)·0 − τ must be >= 0, so the target's is >= (α−1)Δ.
  for (const double delta : {0.5, 1.0, 1.5}) {
    const double bound15 = 0.25 * delta * delta, bound_sp = delta;
    const auto& e15 = maps[3];
    const auto& sp = maps[2];
    bool ok = true;
    T last15 = 0;
    for (std::size_t n : ns) {
      last15 = two_level(e15.fn, n, 1, T(delta)).target;
      const T psp = two_level(sp.fn, n, 1, T(delta * 0.5)).target;  // Δ/2 < 1: below sparsemax's threshold
      ok = ok && double(last15) >= bound15 && double(psp) >= 0.5 * bound_sp;
    }
    claims.claim(
        ok,
        "[%s] below the threshold attention does not vanish: entmax15 target >= (Δ/2)^2 = %g at Δ = %g "
        "(%.4f at n = %zu), sparsemax >= %g at Δ = %g, for every n",
        tname, bound15, delta, double(last15), ns.back(), 0.5 * bound_sp, 0.5 * delta);
  }
  // Softmax and scalable softmax follow their closed forms; softmax decays, below 0.001 at 65,536.
  for (const double delta : {2.0, 3.0}) {
    double worst_sm = 0, worst_ss = 0;
    bool decreasing = true;
    T prev = T(2);
    for (std::size_t n : ns) {
      const T sm = two_level(maps[0].fn, n, 1, T(delta)).target;
      const T ss = two_level(maps[1].fn, n, 1, T(delta)).target;
      const double c = kSsmaxS * std::log(dbl(n + 1));
      worst_sm = std::max(worst_sm, std::fabs(double(sm) / softmax_two_level_exact(n, delta) - 1));
      worst_ss =
          std::max(worst_ss, std::fabs(double(ss) / softmax_two_level_exact(n, double(T(c)) * delta) - 1));
      decreasing = decreasing && sm < prev;
      prev = sm;
    }
    claims.claim(worst_sm <= rel_tol,
                 "[%s] softmax target at Δ = %g equals e^Δ/(e^Δ + n − 1) (worst relative error %.2g)", tname,
                 delta, worst_sm);
    claims.claim(worst_ss <= 4 * rel_tol,
                 "[%s] scalable softmax target at Δ = %g equals its closed form with c = log(n+1) (worst "
                 "rel. error %.2g)",
                 tname, delta, worst_ss);
    claims.claim(decreasing, "[%s] softmax target probability at Δ = %g strictly decreases as n doubles",
                 tname, delta);
  }
  if (ns.back() >= 65536) {
    const T p64 = two_level(maps[0].fn, 64, 1, T(3)).target;
    const T p65k = two_level(maps[0].fn, 65536, 1, T(3)).target;
    claims.claim(p64 > T(0.2) && p64 < T(0.3), "[%s] softmax target at Δ = 3, n = 64 is %.4f (paper: 0.24)",
                 tname, double(p64));
    claims.claim(p65k < T(0.001), "[%s] softmax target at Δ = 3, n = 65,536 is %.3g < 0.001 (paper: 0.0003)",
                 tname, double(p65k));
  }
}

void table_two_level(const std::vector<std::size_t>& ns, const std::string& out) {
  const auto maps = five_maps<double>();
  std::vector<ex::TableColumn> cols{{"delta", ex::Fmt::fixed4}, {"n", ex::Fmt::integer}};
  for (const auto& m : maps) cols.push_back({m.name, ex::Fmt::prob});
  ex::Table t(
      "1. Target probability: one target Δ above n − 1 equal distractors (float64; exact 0/1 print as 0/1;\n"
      "   ssmax = softmax(log(n+1)·z), asentmax: δ = 1, β = 1, γ = 0.5)",
      cols);
  for (const double delta : {1.0, 2.0, 3.0}) {
    for (std::size_t n : ns) {
      t.row().add(delta).add(dbl(n));
      for (const auto& m : maps) t.add(double(two_level(m.fn, n, 1, delta).target));
    }
  }
  t.print();
  t.write_csv(out, "dispersion_two_level.csv");
}

/// Δ* = k^{1−α}/(α−1): just above it each target gets 1/k and the support is k; just below, every
/// distractor enters the support.
void threshold(ex::Claims* claims, const std::vector<std::size_t>& ns, const std::string& out) {
  ex::Table t("1b. Threshold Δ* = k^(1−α)/(α−1), checked at Δ = Δ*·(1 ± 1e-2) (float64, largest n shown)",
              {{"alpha", ex::Fmt::fixed4},
               {"k", ex::Fmt::integer},
               {"delta_star", ex::Fmt::fixed4},
               {"n", ex::Fmt::integer},
               {"support_above", ex::Fmt::integer},
               {"p_target_above", ex::Fmt::prob},
               {"support_below", ex::Fmt::integer},
               {"p_target_below", ex::Fmt::prob}});
  for (const double alpha : {1.25, 1.5, 2.0, 3.0}) {
    const RowFn<double> f = [alpha](const double* z, double* p, std::size_t n) {
      return entmax_alpha(z, p, n, alpha);
    };
    for (const std::size_t k : {std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8}}) {
      const double dstar = std::pow(dbl(k), 1 - alpha) / (alpha - 1);
      bool ok = true;
      std::string why;
      TwoLevel<double> above{}, below{};
      for (std::size_t n : ns) {
        above = two_level(f, n, k, dstar * (1 + 1e-2));
        below = two_level(f, n, k, dstar * (1 - 1e-2));
        const bool a_ok = above.support == k && above.max_distractor == 0.0 &&
                          std::fabs(above.target - 1.0 / dbl(k)) <= 1e-12;
        const bool b_ok = below.support == n && below.max_distractor > 0.0 && below.target < 1.0 / dbl(k);
        if (!(a_ok && b_ok) && ok) {
          ok = false;
          char buf[160];
          std::snprintf(buf, sizeof buf, " (n = %zu: above support %zu p %.17g, below support %zu p %.17g)",
                        n, above.support, above.target, below.support, below.target);
          why = buf;
        }
      }
      t.row().add(alpha).add(dbl(k)).add(dstar).add(dbl(ns.back())).add(dbl(above.support)).add(above.target);
      t.add(dbl(below.support)).add(below.target);
      if (claims) {
        claims->claim(
            ok,
            "α = %g, k = %zu: Δ* = %.6g; above it support = k, targets 1/k (±1e-12), distractors 0; "
            "below it support = n, for n = %zu..%zu%s",
            alpha, k, dstar, ns.front(), ns.back(), why.c_str());
      }
    }
  }
  t.print();
  t.write_csv(out, "dispersion_threshold.csv");
}

// ---------------------------------------------------------------------------------------------
// 2. Appending tokens below the threshold.

template <class T>
void append_demo(ex::Claims* claims, const std::vector<std::size_t>& ns, const std::string& out,
                 const char* tname) {
  const std::size_t base = ns.front();  // 64
  std::mt19937_64 rng(2506);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<T> z(base), p0_sm(base), p0_15(base), p0_sp(base), p0_b(base), p(base);
  for (auto& v : z) v = static_cast<T>(normal(rng));
  entmax::softmax(z.data(), p0_sm.data(), base);
  const RowStats<T> s15 = entmax::entmax15(z.data(), p0_15.data(), base);
  const RowStats<T> ssp = entmax::sparsemax(z.data(), p0_sp.data(), base);
  const RowStats<T> sb = entmax::entmax_bisect(z.data(), p0_b.data(), base, T(1.25));
  // z_i gets p_i = 0 when (α−1)(z_i − max) <= τ: the score threshold is max + τ/(α−1).
  const double below = std::min({double(s15.max) + double(s15.tau) / 0.5, double(ssp.max) + double(ssp.tau),
                                 double(sb.max) + double(sb.tau) / 0.25}) -
                       0.01;
  ex::Table t(std::string("2. Appending tokens scored below the threshold to a row of 64 N(0,1) scores (") +
                  tname + "): change of the 64 original probabilities",
              {{"n", ex::Fmt::integer},
               {"softmax_max_rel_drop", ex::Fmt::fixed4},
               {"softmax_all_lower", ex::Fmt::text},
               {"entmax15_identical", ex::Fmt::text},
               {"sparsemax_identical", ex::Fmt::text},
               {"bisect125_max_abs_change", ex::Fmt::sci},
               {"asentmax_max_abs_change", ex::Fmt::sci}});
  std::vector<T> p0_as(base);
  entmax::asentmax(z.data(), p0_as.data(), base, T(1.5), T(kBeta), T(kGammaUp), T(kDelta), base + 1);
  bool ok15 = true, oksp = true, oksm = true, zeros = true;
  double worst_bisect = 0;
  for (std::size_t n : ns) {
    if (n == base) continue;
    while (z.size() < n) z.push_back(static_cast<T>(below - 2.0 * uniform(rng)));
    p.assign(n, T(0));
    auto original_identical = [&](const std::vector<T>& ref) {
      return std::memcmp(p.data(), ref.data(), base * sizeof(T)) == 0;
    };
    auto appended_zero = [&] {
      return std::all_of(p.begin() + static_cast<std::ptrdiff_t>(base), p.end(),
                         [](T v) { return v == T(0); });
    };
    entmax::softmax(z.data(), p.data(), n);
    double drop = 0;
    bool lower = true;
    for (std::size_t i = 0; i < base; ++i) {
      drop = std::max(drop, 1.0 - double(p[i]) / double(p0_sm[i]));
      lower = lower && p[i] < p0_sm[i];
    }
    entmax::entmax15(z.data(), p.data(), n);
    const bool id15 = original_identical(p0_15);
    zeros = zeros && appended_zero();
    entmax::sparsemax(z.data(), p.data(), n);
    const bool idsp = original_identical(p0_sp);
    zeros = zeros && appended_zero();
    entmax::entmax_bisect(z.data(), p.data(), n, T(1.25));
    double bisect_change = 0;
    for (std::size_t i = 0; i < base; ++i)
      bisect_change = std::max(bisect_change, std::fabs(double(p[i]) - double(p0_b[i])));
    zeros = zeros && appended_zero();
    entmax::asentmax(z.data(), p.data(), n, T(1.5), T(kBeta), T(kGammaUp), T(kDelta), n + 1);
    double as_change = 0;
    for (std::size_t i = 0; i < base; ++i)
      as_change = std::max(as_change, std::fabs(double(p[i]) - double(p0_as[i])));
    t.row().add(dbl(n)).add(drop).add(lower ? "yes" : "NO").add(id15 ? "yes" : "NO").add(idsp ? "yes" : "NO");
    t.add(bisect_change).add(as_change);
    ok15 = ok15 && id15;
    oksp = oksp && idsp;
    oksm = oksm && lower;
    worst_bisect = std::max(worst_bisect, bisect_change);
  }
  t.print();
  t.write_csv(out, std::string("dispersion_append_") + tname + ".csv");
  if (claims) {
    claims->claim(
        ok15, "[%s] entmax15: the 64 original probabilities are bit-identical after appending up to n = %zu",
        tname, ns.back());
    claims->claim(
        oksp, "[%s] sparsemax: the 64 original probabilities are bit-identical after appending up to n = %zu",
        tname, ns.back());
    claims->claim(zeros, "[%s] every appended below-threshold token gets probability exactly 0", tname);
    const double eps16 = 16 * double(std::numeric_limits<T>::epsilon());
    claims->claim(
        worst_bisect <= eps16,
        "[%s] entmax_bisect α = 1.25 (iterative τ): original probabilities move by at most %.2g <= 16 ε",
        tname, worst_bisect);
    claims->claim(oksm, "[%s] softmax: every original probability drops with each doubling of n", tname);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Normalised entropy on N(0, 1) scores.

void entropy_demo(ex::Claims* claims, const std::vector<std::size_t>& ns, std::size_t rows,
                  const std::string& out) {
  const auto maps = five_maps<double>();
  std::vector<ex::TableColumn> cols{{"n", ex::Fmt::integer}};
  for (const auto& m : maps) cols.push_back({m.name, ex::Fmt::fixed4});
  cols.push_back({"entmax15_support", ex::Fmt::fixed4});
  cols.push_back({"entmax15_log_support_over_log_n", ex::Fmt::fixed4});
  ex::Table t("3. Normalised entropy H(p)/log n on N(0,1) scores (mean of " + std::to_string(rows) +
                  " rows; 1 = uniform, complete dispersion)",
              cols);
  std::vector<std::vector<double>> ratio(maps.size());
  std::vector<double> beta15;
  for (std::size_t n : ns) {
    std::mt19937_64 rng(1000 + n);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> z(n), p(n);
    std::vector<double> h(maps.size(), 0.0);
    double support15 = 0, log_support15 = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      for (auto& v : z) v = normal(rng);
      for (std::size_t m = 0; m < maps.size(); ++m) {
        const RowStats<double> s = maps[m].fn(z.data(), p.data(), n);
        h[m] += entropy(p) / std::log(dbl(n));
        if (maps[m].name == "entmax15") {
          support15 += dbl(s.support);
          log_support15 += std::log(dbl(s.support)) / std::log(dbl(n));
        }
      }
    }
    t.row().add(dbl(n));
    for (std::size_t m = 0; m < maps.size(); ++m) {
      ratio[m].push_back(h[m] / dbl(rows));
      t.add(h[m] / dbl(rows));
    }
    t.add(support15 / dbl(rows)).add(log_support15 / dbl(rows));
    beta15.push_back(log_support15 / dbl(rows));
  }
  t.print();
  t.write_csv(out, "dispersion_entropy.csv");
  if (!claims) return;
  // Indices of n = 2^6, 2^10 and the largest n.
  const std::size_t a = 0, b = std::min<std::size_t>(4, ns.size() - 1), c = ns.size() - 1;
  const auto& sm = ratio[0];
  const auto& e15 = ratio[3];
  claims->claim(sm[a] < sm[b] && sm[b] < sm[c] && sm[c] > 0.95,
                "softmax H/log n rises towards 1: %.4f (n = %zu), %.4f (n = %zu), %.4f (n = %zu)", sm[a],
                ns[a], sm[b], ns[b], sm[c], ns[c]);
  claims->claim(e15[a] > e15[b] && e15[b] > e15[c] && e15[c] < 0.4,
                "entmax15 H/log n falls: %.4f (n = %zu), %.4f (n = %zu), %.4f (n = %zu)", e15[a], ns[a],
                e15[b], ns[b], e15[c], ns[c]);
  bool bounded = true;
  for (std::size_t i = 0; i < ns.size(); ++i) bounded = bounded && e15[i] <= beta15[i] + 1e-12;
  claims->claim(bounded, "entmax15 H/log n <= log(support)/log n (the support exponent β) at every n");
}

// ---------------------------------------------------------------------------------------------
// 4. A target at 3 among N(0, 1) distractors.

void gaussian_demo(ex::Claims* claims, const std::vector<std::size_t>& ns, std::size_t rows,
                   const std::string& out) {
  constexpr double target_score = 3.0;
  struct Col {
    const char* name;
    RowFn<double> fn;
  };
  const std::vector<Col> maps{
      {"softmax", [](const double* z, double* p, std::size_t n) { return entmax::softmax(z, p, n); }},
      {"entmax15", [](const double* z, double* p, std::size_t n) { return entmax::entmax15(z, p, n); }},
      {"asentmax_gamma+0.5", asentmax_fn<double>(kGammaUp)},
      {"asentmax_gamma-0.5", asentmax_fn<double>(kGammaDown)},
  };
  std::vector<ex::TableColumn> cols{{"n", ex::Fmt::integer}, {"max_distractor", ex::Fmt::fixed4}};
  for (const auto& m : maps) cols.push_back({std::string(m.name) + "_target", ex::Fmt::fixed4});
  for (std::size_t m = 1; m < maps.size(); ++m)
    cols.push_back({std::string(maps[m].name) + "_support", ex::Fmt::fixed4});
  ex::Table t(
      "4. Target scored 3 among n − 1 N(0,1) distractors (mean of " + std::to_string(rows) +
          " rows): target probability and support size\n"
          "   asentmax: s = δ + β·log(n+1)^γ with δ = 1, β = 1 and γ = +0.5 (sharpens) or −0.5 (damps)",
      cols);
  std::vector<std::vector<double>> target(maps.size()), support(maps.size());
  for (std::size_t n : ns) {
    std::mt19937_64 rng(7000 + n);
    std::normal_distribution<double> normal(0.0, 1.0);
    std::vector<double> z(n), p(n), tsum(maps.size(), 0.0), ssum(maps.size(), 0.0);
    double maxd = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      z[0] = target_score;
      for (std::size_t i = 1; i < n; ++i) z[i] = normal(rng);
      maxd += *std::max_element(z.begin() + 1, z.end());
      for (std::size_t m = 0; m < maps.size(); ++m) {
        const RowStats<double> s = maps[m].fn(z.data(), p.data(), n);
        tsum[m] += p[0];
        ssum[m] += dbl(s.support);
      }
    }
    t.row().add(dbl(n)).add(maxd / dbl(rows));
    for (std::size_t m = 0; m < maps.size(); ++m) {
      target[m].push_back(tsum[m] / dbl(rows));
      support[m].push_back(ssum[m] / dbl(rows));
      t.add(tsum[m] / dbl(rows));
    }
    for (std::size_t m = 1; m < maps.size(); ++m) t.add(ssum[m] / dbl(rows));
  }
  t.print();
  t.write_csv(out, "dispersion_gaussian.csv");
  if (!claims) return;
  auto at = [&](const std::vector<double>& v, std::size_t n) {
    const auto it = std::find(ns.begin(), ns.end(), n);
    return it == ns.end() ? std::nan("") : v[static_cast<std::size_t>(it - ns.begin())];
  };
  const auto& e15 = target[1];
  claims->claim(
      at(e15, 64) > 0.3 && at(e15, 4096) < 0.1 && at(e15, 65536) < 0.01,
      "fixed-temperature entmax15 loses the target: %.3f (n = 64), %.3f (1024), %.3f (4096), %.4f (65,536) "
      "(paper: 0.48, 0.19, 0.05, 0.0)",
      at(e15, 64), at(e15, 1024), at(e15, 4096), at(e15, 65536));
  auto spread = [&](const std::vector<double>& v) {  // max/min over n >= 256
    double lo = 1e300, hi = 0;
    for (std::size_t i = 0; i < ns.size(); ++i)
      if (ns[i] >= 256) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    return hi / lo;
  };
  const double grow15 = support[1].back() / support[1].front();
  const double growdown = support[3].back() / support[3].front();
  claims->claim(grow15 > 3, "fixed-temperature entmax15 support grows with n: %.1f -> %.1f (x%.1f)",
                support[1].front(), support[1].back(), grow15);
  claims->claim(
      spread(support[2]) < 2,
      "ASEntmax γ = +0.5 keeps the support roughly constant: %.1f..%.1f for n = 256..%zu (max/min %.2f < 2)",
      *std::min_element(support[2].begin() + 2, support[2].end()),
      *std::max_element(support[2].begin() + 2, support[2].end()), ns.back(), spread(support[2]));
  claims->claim(growdown > grow15 * 0.5 && growdown > 3,
                "ASEntmax γ = −0.5 damps: its support grows like fixed entmax15's, %.1f -> %.1f (x%.1f)",
                support[3].front(), support[3].back(), growdown);
}

}  // namespace

int main(int argc, char** argv) {
  const ex::CliOptions opt = ex::parse_cli(
      argc, argv, "dispersion: attention on a target as n grows, for softmax and sparse (entmax) attention");
  const int max_log2 = opt.max_log2 > 0 ? opt.max_log2 : (opt.check ? 16 : 20);
  if (max_log2 < 10) {
    std::fprintf(stderr, "--max-log2 must be >= 10 here\n");
    return 2;
  }
  const std::vector<std::size_t> ns = lengths(max_log2);
  const std::vector<std::size_t> ns16 = lengths(std::min(max_log2, 16));
  ex::Claims claims;
  ex::Claims* c = opt.check ? &claims : nullptr;
  std::printf("dispersion: n = %zu .. %zu%s\n", ns.front(), ns.back(), opt.check ? " (check mode)" : "");

  table_two_level(ns, opt.out_dir);
  threshold(c, ns16, opt.out_dir);
  append_demo<double>(c, ns, opt.out_dir, "double");
  if (opt.check) append_demo<float>(c, ns, opt.out_dir, "float");
  entropy_demo(c, ns, opt.check ? 8 : 16, opt.out_dir);
  gaussian_demo(c, ns, opt.check ? 20 : 50, opt.out_dir);

  if (!opt.check) return 0;
  std::printf("\nclaims:\n");
  check_two_level<float>(claims, ns, "float");
  check_two_level<double>(claims, ns, "double");
  // The claims of the sections above were printed with their tables; repeat the verdict here.
  return claims.finish("dispersion");
}
