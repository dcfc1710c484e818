// ASEntmax and scalable softmax rows beside plain softmax: forward and backward, float32,
// sparse (N(0,1)) and dense (N(0, 0.25²)) score regimes, many distinct rows.
//
//   bench_asentmax --benchmark_filter='n:8192' --benchmark_repetitions=9
//
// Args: {n, regime}; regime 0 = sparse N(0,1), 1 = dense N(0, 0.25²). Rates are per element.
#include <entmax/asentmax.hpp>
#include <entmax/scalable_softmax.hpp>
#include <entmax/softmax.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace {

// A block of distinct rows (about 1 MiB of scores, at least 4 rows) so that data-dependent
// branches cannot learn one row and the block stays near L2.
struct Rows {
  std::size_t n = 0, count = 0;
  std::vector<float> z, p, dp, dz;
  Rows(std::size_t len, int regime) : n(len) {
    count = std::max<std::size_t>(4, (std::size_t{1} << 18) / len);
    std::mt19937_64 rng(1234 + len * 7 + static_cast<std::size_t>(regime));
    std::normal_distribution<float> nd(0.0f, regime == 0 ? 1.0f : 0.25f);
    z.resize(n * count);
    dp.resize(n * count);
    for (auto& v : z) v = nd(rng);
    for (auto& v : dp) v = nd(rng);
    p.resize(n * count);
    dz.resize(n * count);
  }
  const float* zr(std::size_t r) const { return z.data() + r * n; }
  float* pr(std::size_t r) { return p.data() + r * n; }
  const float* dpr(std::size_t r) const { return dp.data() + r * n; }
  float* dzr(std::size_t r) { return dz.data() + r * n; }
};

constexpr float kAlpha = 1.5f, kBeta = 0.5f, kGamma = 0.3f, kDelta = 1.0f, kS = 1.0f;

void finish(benchmark::State& state, std::size_t n, int regime) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(n));
  state.SetLabel(regime == 0 ? "sparse N(0,1)" : "dense N(0,0.25^2)");
}

void BM_softmax_forward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  std::size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(entmax::softmax(rows.zr(r), rows.pr(r), n));
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void BM_asentmax_forward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  std::size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        entmax::asentmax(rows.zr(r), rows.pr(r), n, kAlpha, kBeta, kGamma, kDelta, n + 1));
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void BM_ssmax_forward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  std::size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(entmax::scalable_softmax(rows.zr(r), rows.pr(r), n, kS, n + 1));
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void BM_softmax_backward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  for (std::size_t r = 0; r < rows.count; ++r) entmax::softmax(rows.zr(r), rows.pr(r), n);
  std::size_t r = 0;
  for (auto _ : state) {
    entmax::softmax_backward(static_cast<const float*>(rows.pr(r)), rows.dpr(r), rows.dzr(r), n);
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void BM_asentmax_backward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  for (std::size_t r = 0; r < rows.count; ++r)
    entmax::asentmax(rows.zr(r), rows.pr(r), n, kAlpha, kBeta, kGamma, kDelta, n + 1);
  std::size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(entmax::asentmax_backward(rows.zr(r), static_cast<const float*>(rows.pr(r)),
                                                       rows.dpr(r), rows.dzr(r), n, kAlpha, kBeta, kGamma,
                                                       kDelta, n + 1));
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void BM_ssmax_backward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const int regime = static_cast<int>(state.range(1));
  Rows rows(n, regime);
  for (std::size_t r = 0; r < rows.count; ++r) entmax::scalable_softmax(rows.zr(r), rows.pr(r), n, kS, n + 1);
  std::size_t r = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(entmax::scalable_softmax_backward(
        rows.zr(r), static_cast<const float*>(rows.pr(r)), rows.dpr(r), rows.dzr(r), n, kS, n + 1));
    benchmark::ClobberMemory();
    r = r + 1 == rows.count ? 0 : r + 1;
  }
  finish(state, n, regime);
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"n", "regime"});
  for (std::int64_t n : {1024, 8192, 65536})
    for (std::int64_t regime : {0, 1}) b->Args({n, regime});
}

}  // namespace

BENCHMARK(BM_softmax_forward)->Apply(sizes);
BENCHMARK(BM_asentmax_forward)->Apply(sizes);
BENCHMARK(BM_ssmax_forward)->Apply(sizes);
BENCHMARK(BM_softmax_backward)->Apply(sizes);
BENCHMARK(BM_asentmax_backward)->Apply(sizes);
BENCHMARK(BM_ssmax_backward)->Apply(sizes);

BENCHMARK_MAIN();
