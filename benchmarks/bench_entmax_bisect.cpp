// α-entmax for any α (entmax_bisect) beside softmax in the same binary: forward, backward and
// the α-gradient, float32, sparse (N(0,1)) and dense (N(0, 0.25²)) rows, many distinct rows;
// plus a scalar std::sort-based α-entmax as the textbook baseline.
//
//   bench_entmax_bisect --benchmark_filter='/4096$' --benchmark_repetitions=9
//
// Names: BM_<pass>/<map>/<regime>/<n>, e.g. BM_fwd/bisect1.25/sparse/4096, BM_fwd/softmax/dense/8192,
// BM_bwd/bisect1.75/sparse/4096, BM_alpha_grad/bisect1.5/dense/1024, BM_fwd/std_sort1.5/sparse/4096.
// Rates (items/s) are per score.
#include <entmax/entmax_bisect.hpp>
#include <entmax/softmax.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

// A block of distinct rows (about 1 MiB of scores, at least 4 rows), so that data-dependent
// branches cannot learn one row and the block stays near L2.
struct Rows {
  std::size_t n = 0, count = 0;
  std::vector<float> z, p, dp, dz;
  Rows(std::size_t len, bool dense) : n(len) {
    count = std::max<std::size_t>(4, (std::size_t{1} << 18) / len);
    std::mt19937_64 rng(4321 + len * 13 + (dense ? 1u : 0u));
    std::normal_distribution<float> nd(0.0f, dense ? 0.25f : 1.0f);
    std::normal_distribution<float> g(0.0f, 1.0f);
    z.resize(n * count);
    dp.resize(n * count);
    for (auto& v : z) v = nd(rng);
    for (auto& v : dp) v = g(rng);
    p.resize(n * count);
    dz.resize(n * count);
  }
  const float* zr(std::size_t r) const { return z.data() + r * n; }
  float* pr(std::size_t r) { return p.data() + r * n; }
  const float* dpr(std::size_t r) const { return dp.data() + r * n; }
  float* dzr(std::size_t r) { return dz.data() + r * n; }
};

/// The textbook algorithm, scalar: sort descending, find the support size by binary search on
/// Σ_{j≤k} (s_j − s_k)^κ < 1, solve for τ on it by Newton, write the output (double arithmetic).
void std_sort_entmax(const float* z, float* p, std::size_t n, double alpha, std::vector<double>& s) {
  const double a = alpha - 1, kappa = 1 / a;
  const double m = *std::max_element(z, z + n);
  s.resize(n);
  for (std::size_t i = 0; i < n; ++i) s[i] = a * (static_cast<double>(z[i]) - m);
  std::sort(s.begin(), s.end(), std::greater<double>());
  auto g = [&](std::size_t k, double t) {
    double acc = 0;
    for (std::size_t j = 0; j < k; ++j) acc += std::pow(s[j] - t, kappa);
    return acc;
  };
  std::size_t lo = 1, hi = n;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo + 1) / 2;
    if (g(mid, s[mid - 1]) < 1)
      lo = mid;
    else
      hi = mid - 1;
  }
  double tau = s[lo - 1] - 1;
  for (int it = 0; it < 100; ++it) {
    double f = -1, df = 0;
    for (std::size_t j = 0; j < lo; ++j) {
      const double x = s[j] - tau, y = std::pow(x, kappa);
      f += y;
      df += kappa * y / x;
    }
    const double next = tau + f / df;
    if (next == tau) break;
    tau = next;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const double x = a * (static_cast<double>(z[i]) - m) - tau;
    p[i] = x > 0 ? static_cast<float>(std::pow(x, kappa)) : 0.0f;
  }
}

void finish(benchmark::State& state, std::size_t n) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
}

const char* regime_name(bool dense) { return dense ? "dense" : "sparse"; }

std::string alpha_name(float alpha) {
  std::string s = std::to_string(alpha);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

void register_all() {
  const std::vector<std::size_t> sizes = {1024, 4096, 8192, 65536};
  const std::vector<float> alphas = {1.25f, 1.5f, 1.75f, 2.0f, 3.0f};
  for (bool dense : {false, true}) {
    for (std::size_t n : sizes) {
      const std::string tail = std::string("/") + regime_name(dense) + "/" + std::to_string(n);
      benchmark::RegisterBenchmark(("BM_fwd/softmax" + tail).c_str(), [n, dense](benchmark::State& st) {
        Rows rows(n, dense);
        std::size_t r = 0;
        for (auto _ : st) {
          benchmark::DoNotOptimize(entmax::softmax(rows.zr(r), rows.pr(r), n));
          benchmark::ClobberMemory();
          r = r + 1 == rows.count ? 0 : r + 1;
        }
        finish(st, n);
      });
      for (float alpha : alphas) {
        benchmark::RegisterBenchmark(
            ("BM_fwd/bisect" + alpha_name(alpha) + tail).c_str(), [n, dense, alpha](benchmark::State& st) {
              Rows rows(n, dense);
              std::size_t r = 0, support = 0;
              for (auto _ : st) {
                support += entmax::entmax_bisect(rows.zr(r), rows.pr(r), n, alpha).support;
                benchmark::ClobberMemory();
                r = r + 1 == rows.count ? 0 : r + 1;
              }
              st.counters["support"] = static_cast<double>(support) / static_cast<double>(st.iterations());
              finish(st, n);
            });
      }
      benchmark::RegisterBenchmark(("BM_bwd/softmax" + tail).c_str(), [n, dense](benchmark::State& st) {
        Rows rows(n, dense);
        for (std::size_t r = 0; r < rows.count; ++r) entmax::softmax(rows.zr(r), rows.pr(r), n);
        std::size_t r = 0;
        for (auto _ : st) {
          entmax::softmax_backward(rows.pr(r), rows.dpr(r), rows.dzr(r), n);
          benchmark::ClobberMemory();
          r = r + 1 == rows.count ? 0 : r + 1;
        }
        finish(st, n);
      });
      for (float alpha : alphas) {
        benchmark::RegisterBenchmark(
            ("BM_bwd/bisect" + alpha_name(alpha) + tail).c_str(), [n, dense, alpha](benchmark::State& st) {
              Rows rows(n, dense);
              for (std::size_t r = 0; r < rows.count; ++r)
                entmax::entmax_bisect(rows.zr(r), rows.pr(r), n, alpha);
              std::size_t r = 0;
              for (auto _ : st) {
                entmax::entmax_bisect_backward(rows.pr(r), rows.dpr(r), rows.dzr(r), n, alpha);
                benchmark::ClobberMemory();
                r = r + 1 == rows.count ? 0 : r + 1;
              }
              finish(st, n);
            });
        benchmark::RegisterBenchmark(
            ("BM_alpha_grad/bisect" + alpha_name(alpha) + tail).c_str(),
            [n, dense, alpha](benchmark::State& st) {
              Rows rows(n, dense);
              for (std::size_t r = 0; r < rows.count; ++r)
                entmax::entmax_bisect(rows.zr(r), rows.pr(r), n, alpha);
              std::size_t r = 0;
              for (auto _ : st) {
                benchmark::DoNotOptimize(entmax::entmax_alpha_grad(rows.pr(r), rows.dpr(r), n, alpha));
                r = r + 1 == rows.count ? 0 : r + 1;
              }
              finish(st, n);
            });
      }
      for (float alpha : {1.25f, 1.75f}) {
        benchmark::RegisterBenchmark(("BM_fwd/std_sort" + alpha_name(alpha) + tail).c_str(),
                                     [n, dense, alpha](benchmark::State& st) {
                                       Rows rows(n, dense);
                                       std::vector<double> scratch;
                                       std::size_t r = 0;
                                       for (auto _ : st) {
                                         std_sort_entmax(rows.zr(r), rows.pr(r), n, alpha, scratch);
                                         benchmark::ClobberMemory();
                                         r = r + 1 == rows.count ? 0 : r + 1;
                                       }
                                       finish(st, n);
                                     });
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
