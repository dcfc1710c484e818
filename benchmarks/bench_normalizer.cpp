// Row normalizers, float, one thread: this library's softmax / sparsemax / entmax15 /
// entmax_bisect (α = 1.25, 1.75), an Eigen-expression softmax and textbook std::sort
// sparsemax / entmax15, forward and backward, on a block of distinct rows that the benchmark
// cycles through (so data-dependent branches cannot be learnt from one row).
//
// Names: BM_<fwd|bwd>/<kernel>/<sparse|dense>/<n>; sparse rows are N(0, 1), dense N(0, 0.25²).
// Rates are per element (SetItemsProcessed). Ratios are meaningful within one run only.
#include <entmax/entmax15.hpp>
#include <entmax/softmax.hpp>
#include <entmax/sparsemax.hpp>
#if __has_include(<entmax/entmax_bisect.hpp>)
#include <entmax/entmax_bisect.hpp>
#define ENTMAX_BENCH_HAVE_BISECT 1
#else
#define ENTMAX_BENCH_HAVE_BISECT 0
#endif

#include <benchmark/benchmark.h>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

// A block of rows: ≥ 16 distinct rows, about 2^18 scores in total.
struct Rows {
  std::size_t n = 0, count = 0;
  std::vector<float> z, p, dp, dz;
  const float* row(std::size_t r) const { return z.data() + r * n; }
};

Rows make_rows(std::size_t n, float sigma, std::uint64_t seed) {
  Rows rows;
  rows.n = n;
  rows.count = std::max<std::size_t>(16, (std::size_t{1} << 18) / n);
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.0f, sigma), gd(0.0f, 1.0f);
  rows.z.resize(rows.count * n);
  rows.dp.resize(rows.count * n);
  for (auto& v : rows.z) v = nd(g);
  for (auto& v : rows.dp) v = gd(g);
  rows.p.resize(rows.count * n);
  rows.dz.resize(rows.count * n);
  return rows;
}

// ---- baselines ----------------------------------------------------------------------------

void eigen_softmax(const float* z, float* p, std::size_t n) {
  const Eigen::Map<const Eigen::ArrayXf> zm(z, static_cast<Eigen::Index>(n));
  Eigen::Map<Eigen::ArrayXf> pm(p, static_cast<Eigen::Index>(n));
  const float m = zm.maxCoeff();
  pm = (zm - m).exp();
  pm /= pm.sum();
}

// Textbook sparsemax: sort descending, find the support size, threshold.
void sort_sparsemax(const float* z, float* p, std::size_t n, std::vector<float>& tmp) {
  tmp.assign(z, z + n);
  std::sort(tmp.begin(), tmp.end(), std::greater<float>());
  float cum = 0.0f, tau = 0.0f;
  for (std::size_t k = 1; k <= n; ++k) {
    cum += tmp[k - 1];
    const float t = (cum - 1.0f) / static_cast<float>(k);
    if (tmp[k - 1] > t) tau = t;
  }
  for (std::size_t i = 0; i < n; ++i) p[i] = std::max(z[i] - tau, 0.0f);
}

// Textbook 1.5-entmax (Peters et al. 2019): sort x = z/2 descending, closed-form τ per prefix.
void sort_entmax15(const float* z, float* p, std::size_t n, std::vector<float>& tmp) {
  tmp.resize(n);
  for (std::size_t i = 0; i < n; ++i) tmp[i] = z[i] * 0.5f;
  std::sort(tmp.begin(), tmp.end(), std::greater<float>());
  float cum = 0.0f, cum2 = 0.0f, tau = 0.0f;
  for (std::size_t k = 1; k <= n; ++k) {
    cum += tmp[k - 1];
    cum2 += tmp[k - 1] * tmp[k - 1];
    const float kf = static_cast<float>(k), mean = cum / kf;
    const float delta = (1.0f - kf * (cum2 / kf - mean * mean)) / kf;
    if (delta < 0.0f) break;
    const float t = mean - std::sqrt(delta);
    if (t <= tmp[k - 1]) tau = t;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const float d = std::max(z[i] * 0.5f - tau, 0.0f);
    p[i] = d * d;
  }
}

// ---- runners ------------------------------------------------------------------------------

using RowFn = std::function<void(const float*, float*, std::size_t)>;
using BackFn = std::function<void(const float*, const float*, float*, std::size_t)>;

void run_forward(benchmark::State& state, const Rows& rows_in, const RowFn& f) {
  Rows rows = rows_in;
  std::size_t r = 0;
  for (auto _ : state) {
    f(rows.row(r), rows.p.data() + r * rows.n, rows.n);
    benchmark::DoNotOptimize(rows.p.data() + r * rows.n);
    benchmark::ClobberMemory();
    if (++r == rows.count) r = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(rows.n));
  state.counters["rows"] = static_cast<double>(rows.count);
}

void run_backward(benchmark::State& state, const Rows& rows_in, const RowFn& fwd, const BackFn& bwd) {
  Rows rows = rows_in;
  for (std::size_t r = 0; r < rows.count; ++r) fwd(rows.row(r), rows.p.data() + r * rows.n, rows.n);
  std::size_t r = 0;
  for (auto _ : state) {
    const std::size_t o = r * rows.n;
    bwd(rows.p.data() + o, rows.dp.data() + o, rows.dz.data() + o, rows.n);
    benchmark::DoNotOptimize(rows.dz.data() + o);
    benchmark::ClobberMemory();
    if (++r == rows.count) r = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(rows.n));
}

struct Kernel {
  std::string name;
  RowFn fwd;
  BackFn bwd;  // empty: forward only
  bool slow;   // baselines: skip the largest n
};

std::vector<Kernel> kernels() {
  std::vector<Kernel> k;
  k.push_back({"softmax", [](const float* z, float* p, std::size_t n) { entmax::softmax(z, p, n); },
               [](const float* p, const float* dp, float* dz, std::size_t n) {
                 entmax::softmax_backward(p, dp, dz, n);
               },
               false});
  k.push_back({"eigen_softmax", eigen_softmax, {}, false});
  k.push_back({"sparsemax", [](const float* z, float* p, std::size_t n) { entmax::sparsemax(z, p, n); },
               [](const float* p, const float* dp, float* dz, std::size_t n) {
                 entmax::sparsemax_backward(p, dp, dz, n);
               },
               false});
  k.push_back({"entmax15", [](const float* z, float* p, std::size_t n) { entmax::entmax15(z, p, n); },
               [](const float* p, const float* dp, float* dz, std::size_t n) {
                 entmax::entmax15_backward(p, dp, dz, n);
               },
               false});
#if ENTMAX_BENCH_HAVE_BISECT
  for (float a : {1.25f, 1.75f}) {
    k.push_back({std::string("bisect") + (a == 1.25f ? "1.25" : "1.75"),
                 [a](const float* z, float* p, std::size_t n) { entmax::entmax_bisect(z, p, n, a); },
                 [a](const float* p, const float* dp, float* dz, std::size_t n) {
                   entmax::entmax_bisect_backward(p, dp, dz, n, a);
                 },
                 false});
  }
#endif
  auto tmp = std::make_shared<std::vector<float>>();
  k.push_back({"sort_sparsemax",
               [tmp](const float* z, float* p, std::size_t n) { sort_sparsemax(z, p, n, *tmp); },
               {},
               true});
  k.push_back({"sort_entmax15",
               [tmp](const float* z, float* p, std::size_t n) { sort_entmax15(z, p, n, *tmp); },
               {},
               true});
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  static std::vector<std::pair<std::string, Rows>> data;  // stable storage for the lambdas
  data.reserve(8);
  for (std::size_t n : {1024u, 4096u, 8192u, 65536u})
    for (const auto& regime :
         {std::make_pair(std::string("sparse"), 1.0f), std::make_pair(std::string("dense"), 0.25f)})
      data.emplace_back(regime.first + "/" + std::to_string(n), make_rows(n, regime.second, 42 + n));
  const std::vector<Kernel> ks = kernels();
  for (const auto& d : data) {
    for (const auto& k : ks) {
      const Rows* rows = &d.second;
      benchmark::RegisterBenchmark(("BM_fwd/" + k.name + "/" + d.first).c_str(),
                                   [rows, f = k.fwd](benchmark::State& st) { run_forward(st, *rows, f); });
      if (k.bwd)
        benchmark::RegisterBenchmark(
            ("BM_bwd/" + k.name + "/" + d.first).c_str(),
            [rows, f = k.fwd, b = k.bwd](benchmark::State& st) { run_backward(st, *rows, f, b); });
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
