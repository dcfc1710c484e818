// attention: causal attention over Eigen tensors with softmax and with 1.5-entmax, forward and
// backward — what changes (support sizes, outputs) and what it costs (time per call).
//
// The inputs imitate a look-up: each query points at the key three positions back (q_i is a noisy
// copy of k_{i−3}); everything else is noise. Softmax spreads its mass over every visible key,
// 1.5-entmax keeps a handful, and ASEntmax (a per-head length-aware scale, here sharpening with
// length) fewer still. Prints a table per sequence length, writes CSV and, for one head of
// a short sequence, the full attention matrices (for the heat maps of scripts/plot_examples).
// --check asserts, on small float64 problems: the operator equals the row kernels applied to
// naively computed scores, the backward equals central finite differences, the causal first row
// copies v_0; and in float32 at n = 512 that entmax's support is a small fraction of softmax's.
#include <entmax/asentmax.hpp>
#include <entmax/attention.hpp>
#include <entmax/entmax15.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/softmax.hpp>

#include "common/claims.hpp"
#include "common/cli.hpp"
#include "common/table.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

namespace ex = entmax_examples;
template <class T>
using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;
using Index = Eigen::Index;

constexpr Index kLag = 3;  // query i looks for key i − kLag

/// Q, K, V for [B, H, N, D]: K, V ~ N(0, 1) and q_i a noisy copy of k_{i−3}, scaled so that the
/// planted key's score stands about `signal` above the N(0, 1) scores of the other keys.
template <class T>
void make_inputs(Index B, Index H, Index N, Index D, double signal, std::uint64_t seed, Tensor4<T>& q,
                 Tensor4<T>& k, Tensor4<T>& v) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  q.resize(B, H, N, D);
  k.resize(B, H, N, D);
  v.resize(B, H, N, D);
  for (Index i = 0; i < k.size(); ++i) k.data()[i] = static_cast<T>(normal(rng));
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = static_cast<T>(normal(rng));
  // With scale 1/√D, q·k_j/√D ~ N(0, 1) for unrelated unit-variance rows; q = a·k_{i−3} + noise
  // adds a·|k|²/√D ≈ a·√D to the planted key's score: a = signal/√D.
  const double a = signal / std::sqrt(static_cast<double>(D));
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = 0; i < N; ++i)
        for (Index d = 0; d < D; ++d) {
          const double planted = i >= kLag ? static_cast<double>(k(b, h, i - kLag, d)) : 0.0;
          q(b, h, i, d) = static_cast<T>(a * planted + normal(rng));
        }
}

/// Scores of one (b, h) slice computed naively in long double: z_ij = q_i·k_j / √D.
template <class T>
std::vector<T> naive_scores(const Tensor4<T>& q, const Tensor4<T>& k, Index b, Index h) {
  const Index N = q.dimension(2), D = q.dimension(3);
  const long double sc = 1.0L / std::sqrt(static_cast<long double>(D));
  std::vector<T> z(static_cast<std::size_t>(N * N));
  for (Index i = 0; i < N; ++i)
    for (Index j = 0; j < N; ++j) {
      long double s = 0;
      for (Index d = 0; d < D; ++d)
        s += static_cast<long double>(q(b, h, i, d)) * static_cast<long double>(k(b, h, j, d));
      z[static_cast<std::size_t>(i * N + j)] = static_cast<T>(s * sc);
    }
  return z;
}

/// Causal attention weights of one slice from the library's row kernel on naive scores: row i
/// normalises the prefix of i + 1 keys, the rest stays 0.
template <class T, class N>
std::vector<T> causal_weights(const std::vector<T>& z, Index n, const N& norm,
                              std::vector<std::int64_t>* support) {
  std::vector<T> p(z.size(), T(0));
  for (Index i = 0; i < n; ++i) {
    const auto s = norm.forward(z.data() + i * n, p.data() + i * n, static_cast<std::size_t>(i + 1));
    if (support) support->push_back(static_cast<std::int64_t>(s.support));
  }
  return p;
}

template <class F>
double median_ms(int reps, F&& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

/// Mean cosine between the output o_i and the value v_{i−3} its query looks up (queries i >= 3).
template <class T>
double mean_cos_to_target(const Tensor4<T>& o, const Tensor4<T>& v) {
  const Index B = o.dimension(0), H = o.dimension(1), N = o.dimension(2), D = o.dimension(3);
  double acc = 0;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h)
      for (Index i = kLag; i < N; ++i) {
        double dot = 0, oo = 0, vv = 0;
        for (Index d = 0; d < D; ++d) {
          const double x = static_cast<double>(o(b, h, i, d)), y = static_cast<double>(v(b, h, i - kLag, d));
          dot += x * y, oo += x * x, vv += y * y;
        }
        acc += dot / std::sqrt(oo * vv);
      }
  return acc / static_cast<double>(B * H * (N - kLag));
}

double mean_of(const Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor>& s) {
  double acc = 0;
  for (Index i = 0; i < s.size(); ++i) acc += static_cast<double>(s.data()[i]);
  return acc / static_cast<double>(s.size());
}

/// Weight of the planted key (i − 3), averaged over the queries that have one.
template <class T>
double planted_weight(const std::vector<T>& p, Index n) {
  double acc = 0;
  for (Index i = kLag; i < n; ++i) acc += static_cast<double>(p[static_cast<std::size_t>(i * n + i - kLag)]);
  return acc / static_cast<double>(n - kLag);
}

// ---------------------------------------------------------------------------------------------

/// Timing and support table over sequence lengths (float32, one thread).
void sweep(const ex::CliOptions& opt, int max_log2) {
  constexpr Index B = 1, H = 8, D = 64;
  const int reps = opt.check ? 1 : 3;
  ex::Table t("Causal attention, float32, B = 1, H = 8, head_dim = 64, one thread (median of " +
                  std::to_string(reps) + " calls; q_i points at k_{i-3})",
              {{"n", ex::Fmt::integer},
               {"softmax_fwd_ms", ex::Fmt::fixed4},
               {"entmax15_fwd_ms", ex::Fmt::fixed4},
               {"softmax_bwd_ms", ex::Fmt::fixed4},
               {"entmax15_bwd_ms", ex::Fmt::fixed4},
               {"mean_visible_keys", ex::Fmt::fixed4},
               {"entmax15_mean_support", ex::Fmt::fixed4},
               {"softmax_cos_to_target", ex::Fmt::fixed4},
               {"entmax15_cos_to_target", ex::Fmt::fixed4},
               {"rel_diff_outputs", ex::Fmt::fixed4},
               {"asentmax_mean_support", ex::Fmt::fixed4},
               {"asentmax_cos_to_target", ex::Fmt::fixed4}});
  for (int e = 8; e <= max_log2; ++e) {
    const Index N = Index{1} << e;
    Tensor4<float> q, k, v;
    make_inputs<float>(B, H, N, D, 4.0, 42 + static_cast<std::uint64_t>(e), q, k, v);
    Tensor4<float> dout(B, H, N, D);
    std::mt19937_64 rng(99);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Index i = 0; i < dout.size(); ++i) dout.data()[i] = normal(rng);
    entmax::AttentionOptions<float> o;
    o.causal = true;
    Tensor4<float> os, oe;
    Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> sup;
    const double fs = median_ms(reps, [&] { os = entmax::attention(q, k, v, entmax::Softmax{}, o); });
    const double fe = median_ms(reps, [&] { oe = entmax::attention(q, k, v, entmax::Entmax15{}, o, &sup); });
    const double bs =
        median_ms(reps, [&] { (void)entmax::attention_backward(q, k, v, dout, entmax::Softmax{}, o); });
    const double be =
        median_ms(reps, [&] { (void)entmax::attention_backward(q, k, v, dout, entmax::Entmax15{}, o); });
    // ASEntmax with per-head β = 1, γ = 0.5, δ = 1: s = 1 + log(visible keys + 1)^0.5 sharpens with length.
    const std::vector<float> beta(H, 1.0f), gamma(H, 0.5f);
    const auto as =
        entmax::ASEntmax<float>::per_head(beta.data(), gamma.data(), H, static_cast<std::size_t>(N));
    Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> sup_as;
    const Tensor4<float> oa = entmax::attention(q, k, v, as, o, &sup_as);
    double diff = 0, norm = 0;
    for (Index i = 0; i < os.size(); ++i) {
      const double d = static_cast<double>(os.data()[i]) - static_cast<double>(oe.data()[i]);
      diff += d * d;
      norm += static_cast<double>(os.data()[i]) * static_cast<double>(os.data()[i]);
    }
    t.row().add(static_cast<double>(N)).add(fs).add(fe).add(bs).add(be).add(static_cast<double>(N + 1) / 2);
    t.add(mean_of(sup))
        .add(mean_cos_to_target(os, v))
        .add(mean_cos_to_target(oe, v))
        .add(std::sqrt(diff / norm))
        .add(mean_of(sup_as))
        .add(mean_cos_to_target(oa, v));
  }
  t.print();
  t.write_csv(opt.out_dir, "attention_sweep.csv");
}

/// One head of a 64-token sequence: the full causal attention matrices, for the heat maps.
void heatmaps(const ex::CliOptions& opt) {
  constexpr Index N = 64, D = 64;
  Tensor4<double> q, k, v;
  make_inputs<double>(1, 1, N, D, 4.0, 7, q, k, v);
  const std::vector<double> z = naive_scores(q, k, 0, 0);
  ex::Table t("One head, n = 64 (float64): weight on the planted key i-3 and support size",
              {{"normalizer", ex::Fmt::text},
               {"mean_weight_on_key_i_minus_3", ex::Fmt::fixed4},
               {"mean_support", ex::Fmt::fixed4},
               {"mean_visible_keys", ex::Fmt::fixed4}});
  auto dump = [&](const char* name, const std::vector<double>& p, const std::vector<std::int64_t>& sup) {
    const std::string path = opt.out_dir + "/attention_weights_" + name + ".dat";
    if (std::FILE* f = opt.out_dir.empty() ? nullptr : std::fopen(path.c_str(), "w")) {
      for (Index i = 0; i < N; ++i) {
        for (Index j = 0; j < N; ++j)
          std::fprintf(f, "%s%.6g", j ? " " : "", p[static_cast<std::size_t>(i * N + j)]);
        std::fprintf(f, "\n");
      }
      std::fclose(f);
      std::printf("(wrote %s)\n", path.c_str());
    }
    double s = 0;
    for (auto x : sup) s += static_cast<double>(x);
    t.row()
        .add(name)
        .add(planted_weight(p, N))
        .add(s / static_cast<double>(N))
        .add(static_cast<double>(N + 1) / 2);
  };
  std::vector<std::int64_t> ss, se;
  const auto ps = causal_weights(z, N, entmax::Softmax{}, &ss);
  const auto pe = causal_weights(z, N, entmax::Entmax15{}, &se);
  if (!opt.out_dir.empty()) ex::ensure_dir(opt.out_dir);
  dump("softmax", ps, ss);
  dump("entmax15", pe, se);
  t.print();
  t.write_csv(opt.out_dir, "attention_heatmap_summary.csv");
}

// ---------------------------------------------------------------------------------------------
// --check: float64 claims on a small problem.

template <class N>
void check_forward(ex::Claims& c, const char* name, const N& norm) {
  constexpr Index B = 2, H = 2, L = 40, D = 16;
  Tensor4<double> q, k, v;
  make_inputs<double>(B, H, L, D, 4.0, 5, q, k, v);
  entmax::AttentionOptions<double> o;
  o.causal = true;
  Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> sup;
  const Tensor4<double> out = entmax::attention(q, k, v, norm, o, &sup);
  double worst = 0;
  bool support_ok = true, first_row = true;
  for (Index b = 0; b < B; ++b)
    for (Index h = 0; h < H; ++h) {
      std::vector<std::int64_t> ref_sup;
      const auto p = causal_weights(naive_scores(q, k, b, h), L, norm, &ref_sup);
      for (Index i = 0; i < L; ++i) {
        support_ok = support_ok && sup(b, h, i) == ref_sup[static_cast<std::size_t>(i)];
        for (Index d = 0; d < D; ++d) {
          long double ref = 0;
          for (Index j = 0; j <= i; ++j)
            ref += static_cast<long double>(p[static_cast<std::size_t>(i * L + j)]) * v(b, h, j, d);
          worst = std::max(worst,
                           static_cast<double>(std::fabs(static_cast<long double>(out(b, h, i, d)) - ref)));
        }
      }
      for (Index d = 0; d < D; ++d) first_row = first_row && out(b, h, 0, d) == v(b, h, 0, d);
    }
  c.claim(worst <= 1e-12,
          "%s: attention() equals the row kernel on naive long-double scores times V (max |diff| %.2g)", name,
          worst);
  c.claim(support_ok, "%s: the support sizes attention() reports equal the row kernel's", name);
  c.claim(first_row, "%s: causal query 0 sees only key 0, so o_0 == v_0 exactly", name);
}

template <class N>
void check_backward(ex::Claims& c, const char* name, const N& norm) {
  constexpr Index B = 1, H = 2, L = 12, D = 8;
  Tensor4<double> q, k, v, dout(B, H, L, D);
  make_inputs<double>(B, H, L, D, 3.0, 11, q, k, v);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (Index i = 0; i < dout.size(); ++i) dout.data()[i] = normal(rng);
  entmax::AttentionOptions<double> o;
  o.causal = true;
  const auto g = entmax::attention_backward(q, k, v, dout, norm, o);
  auto loss = [&] {
    const Tensor4<double> out = entmax::attention(q, k, v, norm, o);
    long double s = 0;
    for (Index i = 0; i < out.size(); ++i) s += static_cast<long double>(out.data()[i]) * dout.data()[i];
    return static_cast<double>(s);
  };
  double worst = 0;
  const double h = 1e-6;
  auto probe = [&](Tensor4<double>& x, const Tensor4<double>& dx) {
    for (Index i = 0; i < x.size(); i += 7) {
      const double x0 = x.data()[i];
      x.data()[i] = x0 + h;
      const double lp = loss();
      x.data()[i] = x0 - h;
      const double lm = loss();
      x.data()[i] = x0;
      const double fd = (lp - lm) / (2 * h);
      worst = std::max(worst, std::fabs(fd - dx.data()[i]) / std::max(1.0, std::fabs(fd)));
    }
  };
  probe(q, g.dq);
  probe(k, g.dk);
  probe(v, g.dv);
  c.claim(worst <= 1e-6,
          "%s: attention_backward dq, dk, dv equal central finite differences (worst rel. error %.2g)", name,
          worst);
}

void check_sparsity(ex::Claims& c) {
  constexpr Index B = 1, H = 4, L = 512, D = 64;
  Tensor4<float> q, k, v;
  make_inputs<float>(B, H, L, D, 4.0, 21, q, k, v);
  entmax::AttentionOptions<float> o;
  o.causal = true;
  Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> ss, se;
  const Tensor4<float> os = entmax::attention(q, k, v, entmax::Softmax{}, o, &ss);
  const Tensor4<float> oe = entmax::attention(q, k, v, entmax::Entmax15{}, o, &se);
  bool dense = true, finite = true;
  for (Index h = 0; h < H; ++h)
    for (Index i = 0; i < L; ++i) dense = dense && ss(0, h, i) == i + 1;
  for (Index i = 0; i < os.size(); ++i)
    finite = finite && std::isfinite(os.data()[i]) && std::isfinite(oe.data()[i]);
  const double mean_e = mean_of(se), visible = static_cast<double>(L + 1) / 2;
  c.claim(dense, "softmax (float32, n = %ld): every query's support is all of its i + 1 visible keys",
          static_cast<long>(L));
  c.claim(mean_e < visible / 20,
          "entmax15 (float32, n = %ld): mean support %.1f keys of %.1f visible on average (< 5%%)",
          static_cast<long>(L), mean_e, visible);
  c.claim(finite, "float32 outputs are finite for both normalizers");
  const double cos_e = mean_cos_to_target(oe, v), cos_s = mean_cos_to_target(os, v);
  c.claim(cos_e > cos_s + 0.1,
          "entmax15's outputs point at the looked-up value v_{i-3}: mean cosine %.3f vs softmax %.3f", cos_e,
          cos_s);
  // ASEntmax multiplies each row by s = 1 + log(npos)^0.5 > 1, a lower temperature: its support can
  // only shrink, row by row.
  const std::vector<float> beta(H, 1.0f), gamma(H, 0.5f);
  const auto as =
      entmax::ASEntmax<float>::per_head(beta.data(), gamma.data(), H, static_cast<std::size_t>(L));
  Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> sa;
  (void)entmax::attention(q, k, v, as, o, &sa);
  bool shrinks = true;
  for (Index i = 0; i < sa.size(); ++i)
    shrinks = shrinks && sa.data()[i] >= 1 && sa.data()[i] <= se.data()[i];
  c.claim(
      shrinks,
      "ASEntmax (per head β = 1, γ = 0.5): every row's support is >= 1 and <= entmax15's (mean %.2f vs %.2f)",
      mean_of(sa), mean_e);
}

}  // namespace

int main(int argc, char** argv) {
  const ex::CliOptions opt =
      ex::parse_cli(argc, argv, "attention: causal softmax vs 1.5-entmax attention, forward and backward");
  const int max_log2 = opt.max_log2 > 0 ? opt.max_log2 : (opt.check ? 9 : 11);
  if (max_log2 < 8) {
    std::fprintf(stderr, "--max-log2 must be >= 8 here\n");
    return 2;
  }
  heatmaps(opt);
  sweep(opt, max_log2);
  if (!opt.check) return 0;
  ex::Claims claims;
  std::printf("\nclaims:\n");
  check_forward(claims, "softmax", entmax::Softmax{});
  check_forward(claims, "entmax15", entmax::Entmax15{});
  check_backward(claims, "softmax", entmax::Softmax{});
  check_backward(claims, "entmax15", entmax::Entmax15{});
  check_sparsity(claims);
  return claims.finish("attention");
}
