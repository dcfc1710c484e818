// Peak memory of long-context attention: forward and backward at N = 65,536 (default), head_dim
// 64, B = H = 1, float, entmax-1.5, compared with the budget 2 × size(Q, K, V, O, dO, dQ, dK, dV)
// + 64 MiB. Reports getrusage(RUSAGE_SELF).ru_maxrss (peak resident set of the process).
//
// usage: bench_attention_memory [N] [threads] [softmax|entmax15]
#include <entmax/attention.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace {

double peak_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // Linux: KiB
}

using Tensor4 = Eigen::Tensor<float, 4, Eigen::RowMajor>;

Tensor4 randn(long n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  Tensor4 t(1, 1, n, 64);
  for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = dist(rng);
  return t;
}

template <class N>
int run(long n, unsigned threads, const N& norm, const char* name) {
  const double mib_per_tensor = static_cast<double>(n) * 64.0 * 4.0 / (1024.0 * 1024.0);
  const double start = peak_mib();
  const Tensor4 q = randn(n, 1), k = randn(n, 2), v = randn(n, 3), dout = randn(n, 4);
  entmax::AttentionOptions<float> opt;
  opt.threads = threads;
  opt.causal = true;
  auto t0 = std::chrono::steady_clock::now();
  Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> support;
  const Tensor4 o = entmax::attention(q, k, v, norm, opt, &support);
  auto t1 = std::chrono::steady_clock::now();
  const double after_forward = peak_mib();
  const auto g = entmax::attention_backward(q, k, v, dout, norm, opt);
  auto t2 = std::chrono::steady_clock::now();
  const double after_backward = peak_mib();
  double nnz = 0;
  for (Eigen::Index i = 0; i < support.size(); ++i) nnz += static_cast<double>(support.data()[i]);
  const double tensors = 8 * mib_per_tensor;  // q, k, v, o, dout, dq, dk, dv
  const double budget = 2 * tensors + 64;
  std::printf("attention memory: %s, causal, N = %ld, D = 64, threads = %u\n", name, n, threads);
  std::printf("  each [1,1,N,64] float tensor   %9.1f MiB (8 tensors: %.1f MiB)\n", mib_per_tensor, tensors);
  std::printf("  peak RSS before inputs         %9.1f MiB\n", start);
  std::printf("  peak RSS after forward         %9.1f MiB  (%.2f s)\n", after_forward,
              std::chrono::duration<double>(t1 - t0).count());
  std::printf("  peak RSS after backward        %9.1f MiB  (%.2f s)\n", after_backward,
              std::chrono::duration<double>(t2 - t1).count());
  std::printf("  budget 2 x tensors + 64 MiB    %9.1f MiB -> %s\n", budget,
              after_backward <= budget ? "within" : "OVER");
  std::printf("  mean support %.1f keys per query; checksum %g %g\n", nnz / static_cast<double>(n),
              static_cast<double>(o(0, 0, n - 1, 0)), static_cast<double>(g.dq(0, 0, n - 1, 0)));
  return after_backward <= budget ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 65536;
  const unsigned threads = argc > 2 ? static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10)) : 2;
  const std::string which = argc > 3 ? argv[3] : "entmax15";
  if (which == "softmax") return run(n, threads, entmax::Softmax{}, "softmax");
  return run(n, threads, entmax::Entmax15{}, "entmax15");
}
