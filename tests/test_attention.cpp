// Tests of entmax::attention / attention_backward against the golden float64 vectors of the
// PyTorch reference and a naive long-double reference (tests/reference/attention.hpp).
#include <entmax/attention.hpp>

#include <entmax/asentmax.hpp>
#include <entmax/scalable_softmax.hpp>

#include <catch2/catch.hpp>

#include <reference/attention.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using ld = long double;
template <class T>
using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;
template <class T>
using Tensor3 = Eigen::Tensor<T, 3, Eigen::RowMajor>;

// ---------------------------------------------------------------------------------------------
// Helpers

template <class T>
Tensor4<T> random_tensor(std::mt19937_64& rng, Eigen::Index b, Eigen::Index h, Eigen::Index n, Eigen::Index d,
                         double sd = 1.0) {
  std::normal_distribution<double> dist(0.0, sd);
  Tensor4<T> t(b, h, n, d);
  for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<T>(dist(rng));
  return t;
}

template <class R, class X>
std::vector<R> to_vec(const X& t) {
  std::vector<R> out(static_cast<std::size_t>(t.size()));
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<R>(t.data()[i]);
  return out;
}

template <class R, class X>
std::vector<R> from_tensor_as(const X& t) {
  return to_vec<R>(t);
}

// Max |a - b| over the entries.
template <class A, class B>
ld max_abs_diff(const A& a, const B& b, std::size_t n) {
  ld m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const ld d = std::fabs(static_cast<ld>(a[i]) - static_cast<ld>(b[i]));
    if (std::isnan(d)) return std::numeric_limits<ld>::infinity();
    m = std::max(m, d);
  }
  return m;
}

template <class A>
ld max_abs(const A& a, std::size_t n) {
  ld m = 0;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<ld>(a[i])));
  return m;
}

// NUMERICS.md: attention ≤ max(abs floor, 5 × a naive same-dtype reference's error).
template <class T>
ld tolerance(ld naive_err, ld magnitude) {
  const ld eps = std::numeric_limits<T>::epsilon();
  return std::max(ld(64) * eps * std::max(ld(1), magnitude), ld(5) * naive_err);
}

// ---------------------------------------------------------------------------------------------
// Golden attention vectors

struct GoldenAttention {
  std::string norm;
  long B = 0, H = 0, Nq = 0, Nk = 0, D = 0;
  bool causal = false;
  std::map<std::string, std::vector<double>> t;
};

std::vector<GoldenAttention> read_golden_attention() {
  const std::string path = std::string(ENTMAX_TEST_DATA_DIR) + "/golden_attention.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<GoldenAttention> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string head;
    ls >> head;
    if (head.rfind("op=", 0) == 0) {
      GoldenAttention g;
      std::string kv;
      while (ls >> kv) {
        const auto eq = kv.find('=');
        const std::string key = kv.substr(0, eq), val = kv.substr(eq + 1);
        if (key == "norm")
          g.norm = val;
        else if (key == "B")
          g.B = std::stol(val);
        else if (key == "H")
          g.H = std::stol(val);
        else if (key == "Nq")
          g.Nq = std::stol(val);
        else if (key == "Nk")
          g.Nk = std::stol(val);
        else if (key == "D")
          g.D = std::stol(val);
        else if (key == "causal")
          g.causal = val == "1";
      }
      out.push_back(g);
    } else if (!out.empty()) {
      std::vector<double> vals;
      std::string x;
      while (ls >> x) vals.push_back(std::stod(x));
      out.back().t[head] = vals;
    }
  }
  return out;
}

template <class T>
Tensor4<T> tensor_from(const std::vector<double>& v, long b, long h, long n, long d) {
  Tensor4<T> t(b, h, n, d);
  REQUIRE(static_cast<long>(v.size()) == b * h * n * d);
  for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<T>(v[i]);
  return t;
}

// ---------------------------------------------------------------------------------------------
// Policies under test, paired with the reference row map.

struct PolicyCase {
  std::string name;
  ld alpha;  // 1: softmax
};

// Calls fn(policy) with the library policy named by `name`.
template <class T, class F>
void with_policy(const std::string& name, F&& fn) {
  if (name == "softmax")
    fn(entmax::Softmax{});
  else if (name == "sparsemax")
    fn(entmax::Sparsemax{});
  else if (name == "entmax15")
    fn(entmax::Entmax15{});
  else if (name == "entmax_bisect_1.25")
    fn(entmax::EntmaxBisect<T>{T(1.25)});
  else
    FAIL("unknown policy " << name);
}

}  // namespace

// =============================================================================================

TEMPLATE_TEST_CASE("attention matches the golden float64 vectors", "[attention][golden]", float, double) {
  using T = TestType;
  const auto records = read_golden_attention();
  REQUIRE(records.size() >= 28);
  int checked = 0;
  for (const auto& g : records) {
    ld alpha;
    if (g.norm == "softmax")
      alpha = 1;
    else if (g.norm == "sparsemax")
      alpha = 2;
    else if (g.norm == "entmax15")
      alpha = 1.5L;
    else if (g.norm == "entmax_bisect_1.25")
      alpha = 1.25L;
    else
      FAIL("unknown norm " << g.norm);
    INFO("norm=" << g.norm << " B=" << g.B << " H=" << g.H << " Nq=" << g.Nq << " Nk=" << g.Nk << " D=" << g.D
                 << " causal=" << g.causal);
    const auto q = tensor_from<T>(g.t.at("q"), g.B, g.H, g.Nq, g.D);
    const auto k = tensor_from<T>(g.t.at("k"), g.B, g.H, g.Nk, g.D);
    const auto v = tensor_from<T>(g.t.at("v"), g.B, g.H, g.Nk, g.D);
    const auto dout = tensor_from<T>(g.t.at("do"), g.B, g.H, g.Nq, g.D);
    entmax::AttentionOptions<T> opt;
    opt.causal = g.causal;
    // Naive same-dtype reference: its error against the golden data sets the tolerance.
    entmax_ref::Options<T> ropt;
    ropt.causal = g.causal;
    const auto naive =
        entmax_ref::attention<T>(to_vec<T>(q), to_vec<T>(k), to_vec<T>(v), to_vec<T>(dout), std::size_t(g.B),
                                 std::size_t(g.H), std::size_t(g.H), std::size_t(g.Nq), std::size_t(g.Nk),
                                 std::size_t(g.D), entmax_ref::RowMap<T>{T(alpha)}, ropt);
    with_policy<T>(g.norm, [&](const auto& pol) {
      const Tensor4<T> o = entmax::attention(q, k, v, pol, opt);
      const auto gr = entmax::attention_backward(q, k, v, dout, pol, opt);
      const std::pair<const char*, const T*> outs[] = {
          {"o", o.data()}, {"dq", gr.dq.data()}, {"dk", gr.dk.data()}, {"dv", gr.dv.data()}};
      const std::vector<T>* nv[] = {&naive.o, &naive.dq, &naive.dk, &naive.dv};
      for (int w = 0; w < 4; ++w) {
        const auto& gold = g.t.at(outs[w].first);
        const ld err = max_abs_diff(outs[w].second, gold.data(), gold.size());
        const ld nerr = max_abs_diff(nv[w]->data(), gold.data(), gold.size());
        const ld tol = tolerance<T>(nerr, max_abs(gold.data(), gold.size()));
        INFO(outs[w].first << ": error " << double(err) << ", naive same-dtype error " << double(nerr)
                           << ", tol " << double(tol));
        CHECK(err <= tol);
      }
    });
    ++checked;
  }
  CHECK(checked == 28);
}

// =============================================================================================
// Every option combination on small shapes against the long-double reference.

namespace {

struct Case {
  long B, H, KH, Nq, Nk, D;
  bool causal = false;
  bool key_len = false;
  int mask = 0;  // 0 none, 1 [B,H], 2 [1,1], 3 [B,1]
  int bias = 0;  // same encoding
  bool alibi = false;
  bool row_scale = false;
  bool policy_scale = false;  // PerRowScale around the base policy
  std::size_t block_rows = 0;
  double sd = 1.0;  // standard deviation of q and k
};

std::string describe(const Case& c) {
  std::ostringstream s;
  s << "B=" << c.B << " H=" << c.H << " KH=" << c.KH << " Nq=" << c.Nq << " Nk=" << c.Nk << " D=" << c.D
    << " causal=" << c.causal << " key_len=" << c.key_len << " mask=" << c.mask << " bias=" << c.bias
    << " alibi=" << c.alibi << " row_scale=" << c.row_scale << " policy_scale=" << c.policy_scale
    << " block_rows=" << c.block_rows << " sd=" << c.sd;
  return s.str();
}

std::array<long, 2> bcast_dims(int mode, long B, long H) {
  switch (mode) {
    case 1:
      return {B, H};
    case 2:
      return {1, 1};
    default:
      return {B, 1};
  }
}

// All inputs of one case, in T, plus the matching reference options.
template <class T>
struct Inputs {
  Case c;
  Tensor4<T> q, k, v, dout;
  Eigen::Tensor<bool, 4, Eigen::RowMajor> mask;
  Tensor4<T> bias;
  Tensor3<T> row_scale;
  std::vector<T> pscale;  // PerRowScale scales, one per row
  entmax::AttentionOptions<T> opt;

  template <class R>
  entmax_ref::Options<R> ref_options() const {
    entmax_ref::Options<R> r;
    r.causal = c.causal;
    r.scale = 0;
    r.key_len.assign(opt.key_lengths.begin(), opt.key_lengths.end());
    if (c.mask) {
      r.mask.resize(static_cast<std::size_t>(mask.size()));
      for (std::size_t i = 0; i < r.mask.size(); ++i) r.mask[i] = mask.data()[i];
      r.mask_b = static_cast<std::size_t>(mask.dimension(0));
      r.mask_h = static_cast<std::size_t>(mask.dimension(1));
    }
    if (c.bias) {
      r.bias = to_vec<R>(bias);
      r.bias_b = static_cast<std::size_t>(bias.dimension(0));
      r.bias_h = static_cast<std::size_t>(bias.dimension(1));
    }
    for (T s : opt.alibi_slopes) r.alibi.push_back(static_cast<R>(s));
    if (c.row_scale) r.row_scale = to_vec<R>(row_scale);
    if (c.policy_scale) {
      const std::vector<T> ps = pscale;
      r.policy_scale = [ps](std::size_t row, std::size_t) { return static_cast<R>(ps[row]); };
    }
    return r;
  }
};

template <class T>
Inputs<T> make_inputs(const Case& c, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  Inputs<T> in;
  in.c = c;
  in.q = random_tensor<T>(rng, c.B, c.H, c.Nq, c.D, c.sd);
  in.k = random_tensor<T>(rng, c.B, c.KH, c.Nk, c.D, c.sd);
  in.v = random_tensor<T>(rng, c.B, c.KH, c.Nk, c.D);
  in.dout = random_tensor<T>(rng, c.B, c.H, c.Nq, c.D);
  in.opt.causal = c.causal;
  in.opt.block_rows = c.block_rows;
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  if (c.key_len) {
    for (long b = 0; b < c.B; ++b)
      in.opt.key_lengths.push_back(b == 0 ? std::max<long>(0, c.Nk - 2)
                                          : static_cast<long>(unif(rng) * double(c.Nk + 1)));
  }
  if (c.mask) {
    const auto d = bcast_dims(c.mask, c.B, c.H);
    in.mask.resize(d[0], d[1], c.Nq, c.Nk);
    for (Eigen::Index i = 0; i < in.mask.size(); ++i) in.mask.data()[i] = unif(rng) < 0.7;
    // One fully masked query row, when there is more than one row.
    if (c.Nq > 1)
      for (long j = 0; j < c.Nk; ++j) in.mask(0, 0, 1, j) = false;
    in.opt.mask = entmax::view(in.mask);
  }
  if (c.bias) {
    const auto d = bcast_dims(c.bias, c.B, c.H);
    in.bias = random_tensor<T>(rng, d[0], d[1], c.Nq, c.Nk, 0.5);
    in.opt.bias = entmax::view(in.bias);
  }
  if (c.alibi)
    for (long h = 0; h < c.H; ++h) in.opt.alibi_slopes.push_back(T(1) / T(h + 1));
  if (c.row_scale) {
    in.row_scale.resize(c.B, c.H, c.Nq);
    for (Eigen::Index i = 0; i < in.row_scale.size(); ++i)
      in.row_scale.data()[i] = static_cast<T>(0.5 + 1.5 * unif(rng));
    in.opt.row_scale = entmax::view(in.row_scale);
  }
  if (c.policy_scale) {
    in.pscale.resize(static_cast<std::size_t>(c.B * c.H * c.Nq));
    for (auto& s : in.pscale) s = static_cast<T>(0.5 + 2.0 * unif(rng));
  }
  return in;
}

// Gradients of one backward call.
struct LibGradients {
  std::vector<ld> dq, dk, dv, drow_scale, dpolicy;
};

struct LibResult {
  std::vector<ld> o;
  LibGradients g, g_saved;  // backward alone / given the forward's RowStats
  std::vector<std::int64_t> support;
};

// Runs the library on the inputs with `base` (wrapped in PerRowScale when the case asks).
template <class T, class Base>
LibResult run_library(const Inputs<T>& in, const Base& base, unsigned threads = 1) {
  entmax::AttentionOptions<T> opt = in.opt;
  opt.threads = threads;
  LibResult r;
  Eigen::Tensor<std::int64_t, 3, Eigen::RowMajor> support;
  std::vector<T> ds(in.pscale.size(), T(-7));  // PerRowScale's gradient sink
  auto run = [&](const auto& pol) {
    std::vector<entmax::RowStats<T>> stats;
    r.o = to_vec<ld>(entmax::attention(in.q, in.k, in.v, pol, opt, &support, &stats));
    r.support.assign(support.data(), support.data() + support.size());
    for (LibGradients* out : {&r.g, &r.g_saved}) {
      const auto g = entmax::attention_backward(in.q, in.k, in.v, in.dout, pol, opt,
                                                out == &r.g_saved ? &stats : nullptr);
      out->dq = to_vec<ld>(g.dq);
      out->dk = to_vec<ld>(g.dk);
      out->dv = to_vec<ld>(g.dv);
      if (in.c.row_scale) out->drow_scale = to_vec<ld>(g.drow_scale);
      out->dpolicy.assign(ds.begin(), ds.end());
    }
  };
  if (in.c.policy_scale)
    run(entmax::PerRowScale<T, Base>(base, in.pscale.data(), ds.data()));
  else
    run(base);
  return r;
}

template <class T, class Base>
void check_case(const Case& c, const Base& base, ld alpha, std::uint64_t seed) {
  INFO(describe(c) << " alpha=" << double(alpha) << " seed=" << seed);
  const Inputs<T> in = make_inputs<T>(c, seed);
  const auto sz = [](long a) { return static_cast<std::size_t>(a); };
  const auto ref = entmax_ref::attention<ld>(
      to_vec<ld>(in.q), to_vec<ld>(in.k), to_vec<ld>(in.v), to_vec<ld>(in.dout), sz(c.B), sz(c.H), sz(c.KH),
      sz(c.Nq), sz(c.Nk), sz(c.D), entmax_ref::RowMap<ld>{alpha}, in.template ref_options<ld>());
  const auto naive = entmax_ref::attention<T>(
      to_vec<T>(in.q), to_vec<T>(in.k), to_vec<T>(in.v), to_vec<T>(in.dout), sz(c.B), sz(c.H), sz(c.KH),
      sz(c.Nq), sz(c.Nk), sz(c.D), entmax_ref::RowMap<T>{T(alpha)}, in.template ref_options<T>());
  const LibResult lib = run_library(in, base);
  auto compare = [&](const char* name, const std::vector<ld>& got, const std::vector<ld>& want,
                     const std::vector<T>& nv) {
    REQUIRE(got.size() == want.size());
    const ld err = max_abs_diff(got, want, got.size());
    const ld nerr = max_abs_diff(nv, want, got.size());
    const ld tol = tolerance<T>(nerr, max_abs(want, want.size()));
    INFO(name << ": error " << double(err) << ", naive same-dtype error " << double(nerr) << ", tol "
              << double(tol));
    CHECK(err <= tol);
  };
  compare("o", lib.o, ref.o, naive.o);
  for (const LibGradients* g : {&lib.g, &lib.g_saved}) {
    INFO((g == &lib.g ? "backward alone" : "backward from the forward's RowStats"));
    compare("dq", g->dq, ref.dq, naive.dq);
    compare("dk", g->dk, ref.dk, naive.dk);
    compare("dv", g->dv, ref.dv, naive.dv);
    if (c.row_scale) compare("drow_scale", g->drow_scale, ref.drow_scale, naive.drow_scale);
    if (c.policy_scale) compare("dpolicy_scale", g->dpolicy, ref.dpolicy_scale, naive.dpolicy_scale);
  }
  // Support sizes: exact in double; float may flip an element sitting at the threshold.
  REQUIRE(lib.support.size() == ref.support.size());
  // Softmax: tiny probabilities underflow to 0 in T (never the reverse).
  std::size_t mismatches = 0, above = 0;
  for (std::size_t i = 0; i < ref.support.size(); ++i) {
    mismatches += static_cast<std::size_t>(lib.support[i]) != ref.support[i];
    above += static_cast<std::size_t>(lib.support[i]) > ref.support[i];
  }
  if (alpha == 1)
    CHECK(above == 0);
  else if (std::is_same_v<T, double>)
    CHECK(mismatches == 0);
  else
    CHECK(mismatches <= ref.support.size() / 20);
}

std::vector<Case> option_cases(std::mt19937_64& rng) {
  std::vector<Case> cases;
  // Shapes around block sizes and SIMD widths, incl. 1s; GQA.
  const long shapes[][6] = {{1, 1, 1, 1, 1, 1},    {1, 1, 1, 1, 7, 3},   {1, 2, 1, 5, 1, 4},
                            {2, 2, 2, 17, 17, 5},  {1, 4, 2, 9, 33, 16}, {2, 3, 1, 33, 70, 8},
                            {1, 1, 1, 70, 65, 17}, {1, 2, 2, 3, 300, 9}};
  std::uniform_int_distribution<int> bit(0, 1), mode(0, 3);
  for (const auto& s : shapes) {
    for (int variant = 0; variant < 6; ++variant) {
      Case c{s[0], s[1], s[2], s[3], s[4], s[5]};
      c.causal = bit(rng);
      c.key_len = bit(rng);
      c.mask = mode(rng);
      c.bias = mode(rng);
      c.alibi = bit(rng);
      c.row_scale = bit(rng);
      c.policy_scale = variant == 5 ? true : bit(rng) && bit(rng);
      c.block_rows = variant % 3 == 0 ? 0 : static_cast<std::size_t>(variant == 1 ? 1 : 4);
      c.sd = variant == 4 ? 3.0 : 1.0;  // sharper rows: more zeros
      if (variant == 0) {               // plain, the fast path
        c.causal = variant % 2;
        c.key_len = false, c.mask = 0, c.bias = 0, c.alibi = false, c.row_scale = false,
        c.policy_scale = false;
      }
      cases.push_back(c);
    }
  }
  return cases;
}

}  // namespace

TEMPLATE_TEST_CASE("attention: every option combination vs the long-double reference", "[attention][options]",
                   float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  std::mt19937_64 rng(seed);
  const auto cases = option_cases(rng);
  std::uint64_t s = seed;
  for (const auto& c : cases) {
    ++s;
    check_case<T>(c, entmax::Softmax{}, 1, s);
    check_case<T>(c, entmax::Sparsemax{}, 2, s);
    check_case<T>(c, entmax::Entmax15{}, 1.5L, s);
    check_case<T>(c, entmax::EntmaxBisect<T>{T(1.25)}, 1.25L, s);
  }
}

TEMPLATE_TEST_CASE("attention: results are bitwise identical for any thread count", "[attention][threads]",
                   float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  for (int mode = 0; mode < 3; ++mode) {
    Case c{2, 4, 2, 70, 600, 16};
    c.causal = mode != 1;
    c.block_rows = mode == 2 ? 0 : 8;
    c.row_scale = mode == 1;
    c.sd = mode == 2 ? 1.0 : 2.0;
    INFO(describe(c));
    const Inputs<T> in = make_inputs<T>(c, seed + std::uint64_t(mode));
    auto same = [](const std::vector<ld>& a, const std::vector<ld>& b) {
      return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](ld x, ld y) {
               return std::memcmp(&x, &y, sizeof(ld)) == 0 || (x == y);
             });
    };
    auto check = [&](const auto& pol) {
      const LibResult one = run_library(in, pol, 1);
      for (unsigned t : {2u, 3u}) {
        INFO("threads " << t);
        const LibResult many = run_library(in, pol, t);
        CHECK(same(one.o, many.o));
        for (const auto& [a, b] : {std::pair{&one.g, &many.g}, std::pair{&one.g_saved, &many.g_saved}}) {
          CHECK(same(a->dq, b->dq));
          CHECK(same(a->dk, b->dk));
          CHECK(same(a->dv, b->dv));
          CHECK(same(a->drow_scale, b->drow_scale));
        }
        CHECK(one.support == many.support);
      }
    };
    check(entmax::Softmax{});
    check(entmax::Entmax15{});
    check(entmax::Sparsemax{});
  }
}

// =============================================================================================
// Masking contract: masked K/V rows are never read; fully masked rows give zeros.

TEMPLATE_TEST_CASE("attention: poisoning masked K/V rows with NaN or 1e30 changes nothing",
                   "[attention][mask]", float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  for (int variant = 0; variant < 4; ++variant) {
    Case c{2, 2, 1, 21, 40, 8};
    c.key_len = true;
    c.causal = variant % 2;
    c.block_rows = variant < 2 ? 0 : 4;
    c.sd = variant == 3 ? 3.0 : 1.0;
    INFO(describe(c));
    Inputs<T> in = make_inputs<T>(c, seed + std::uint64_t(variant));
    in.opt.key_lengths = {std::int64_t{31}, std::int64_t{12}};
    // Keys 5 and 6 hidden from every query by a broadcast mask.
    Eigen::Tensor<bool, 4, Eigen::RowMajor> mask(1, 1, c.Nq, c.Nk);
    mask.setConstant(true);
    for (long i = 0; i < c.Nq; ++i) mask(0, 0, i, 5) = mask(0, 0, i, 6) = false;
    in.opt.mask = entmax::view(mask);
    auto masked_key = [&](long b, long j) {
      return j == 5 || j == 6 || j >= in.opt.key_lengths[std::size_t(b)];
    };
    for (const T poison :
         {std::numeric_limits<T>::quiet_NaN(), T(1e30), -std::numeric_limits<T>::infinity()}) {
      INFO("poison " << poison);
      Inputs<T> bad = in;
      bad.opt.mask = entmax::view(mask);
      for (long b = 0; b < c.B; ++b)
        for (long j = 0; j < c.Nk; ++j)
          if (masked_key(b, j))
            for (long d = 0; d < c.D; ++d) bad.k(b, 0, j, d) = bad.v(b, 0, j, d) = poison;
      auto check = [&](const auto& pol) {
        const LibResult clean = run_library(in, pol), dirty = run_library(bad, pol);
        CHECK(std::equal(clean.o.begin(), clean.o.end(), dirty.o.begin()));
        for (const auto& [a, b] :
             {std::pair{&clean.g, &dirty.g}, std::pair{&clean.g_saved, &dirty.g_saved}}) {
          CHECK(std::equal(a->dq.begin(), a->dq.end(), b->dq.begin()));
          CHECK(std::equal(a->dk.begin(), a->dk.end(), b->dk.begin()));
          CHECK(std::equal(a->dv.begin(), a->dv.end(), b->dv.begin()));
        }
        // Masked keys get exactly zero gradients.
        bool zero = true;
        for (long b = 0; b < c.B; ++b)
          for (long j = 0; j < c.Nk; ++j)
            if (masked_key(b, j))
              for (long d = 0; d < c.D; ++d) {
                const std::size_t at = static_cast<std::size_t>(((b * c.KH) * c.Nk + j) * c.D + d);
                for (const LibGradients* g : {&dirty.g, &dirty.g_saved})
                  zero = zero && g->dk[at] == 0 && g->dv[at] == 0;
              }
        CHECK(zero);
      };
      check(entmax::Softmax{});
      check(entmax::Sparsemax{});
      check(entmax::Entmax15{});
    }
  }
}

TEMPLATE_TEST_CASE("attention: causal outputs never see future keys", "[attention][mask]", float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  Case c{1, 1, 1, 24, 24, 8};
  c.causal = true;
  c.block_rows = 8;
  const Inputs<T> in = make_inputs<T>(c, seed);
  for (long cut : {3L, 9L, 16L}) {
    INFO("keys after " << cut << " poisoned with NaN");
    Inputs<T> bad = in;
    for (long j = cut + 1; j < c.Nk; ++j)
      for (long d = 0; d < c.D; ++d)
        bad.k(0, 0, j, d) = bad.v(0, 0, j, d) = std::numeric_limits<T>::quiet_NaN();
    auto check = [&](const auto& pol) {
      const LibResult clean = run_library(in, pol), dirty = run_library(bad, pol);
      const auto rows = static_cast<std::size_t>((cut + 1) * c.D);
      bool finite = true;
      for (std::size_t i = 0; i < rows; ++i)
        finite = finite && std::isfinite(static_cast<double>(dirty.o[i]));
      CHECK(finite);
      CHECK(max_abs_diff(clean.o, dirty.o, rows) <= ld(16) * std::numeric_limits<T>::epsilon());
    };
    check(entmax::Softmax{});
    check(entmax::Entmax15{});
  }
}

TEMPLATE_TEST_CASE("attention: fully masked queries give zero rows and zero gradients", "[attention][mask]",
                   float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  // Nq > Nk with causal alignment: the first Nq − Nk queries see no key. Batch 1 has no keys.
  Case c{2, 2, 2, 9, 4, 5};
  c.causal = true;
  c.policy_scale = true;
  c.row_scale = true;
  Inputs<T> in = make_inputs<T>(c, seed);
  in.opt.key_lengths = {std::int64_t{4}, std::int64_t{0}};
  auto check = [&](const auto& base) {
    const LibResult r = run_library(in, base);
    bool ok = true;
    for (long b = 0; b < c.B; ++b)
      for (long h = 0; h < c.H; ++h)
        for (long i = 0; i < c.Nq; ++i) {
          const bool empty = b == 1 || i < c.Nq - c.Nk;
          const std::size_t row = static_cast<std::size_t>((b * c.H + h) * c.Nq + i);
          for (long d = 0; d < c.D; ++d) {
            const std::size_t at = row * static_cast<std::size_t>(c.D) + static_cast<std::size_t>(d);
            for (const LibGradients* g : {&r.g, &r.g_saved}) {
              if (empty)
                ok = ok && r.o[at] == 0 && g->dq[at] == 0;
              else
                ok = ok && std::isfinite(static_cast<double>(r.o[at])) &&
                     std::isfinite(static_cast<double>(g->dq[at]));
            }
          }
          for (const LibGradients* g : {&r.g, &r.g_saved})
            if (empty) ok = ok && r.support[row] == 0 && g->drow_scale[row] == 0 && g->dpolicy[row] == 0;
        }
    CHECK(ok);
    // Batch 1: no keys, so dk and dv are zero.
    for (const LibGradients* g : {&r.g, &r.g_saved}) {
      const std::size_t half = g->dk.size() / 2;
      CHECK(std::all_of(g->dk.begin() + std::ptrdiff_t(half), g->dk.end(), [](ld x) { return x == 0; }));
      CHECK(std::all_of(g->dv.begin() + std::ptrdiff_t(half), g->dv.end(), [](ld x) { return x == 0; }));
    }
  };
  check(entmax::Softmax{});
  check(entmax::Sparsemax{});
  check(entmax::Entmax15{});
  // A mask row with every key hidden.
  Eigen::Tensor<bool, 4, Eigen::RowMajor> mask(1, 1, c.Nq, c.Nk);
  mask.setConstant(true);
  for (long j = 0; j < c.Nk; ++j) mask(0, 0, c.Nq - 1, j) = false;
  in.opt.mask = entmax::view(mask);
  in.opt.key_lengths.clear();
  const LibResult r = run_library(in, entmax::Entmax15{});
  for (long b = 0; b < c.B; ++b)
    for (long h = 0; h < c.H; ++h) {
      const std::size_t row = static_cast<std::size_t>((b * c.H + h) * c.Nq + c.Nq - 1);
      for (const LibGradients* g : {&r.g, &r.g_saved}) {
        for (std::size_t d = 0; d < std::size_t(c.D); ++d) {
          CHECK(r.o[row * std::size_t(c.D) + d] == 0);
          CHECK(g->dq[row * std::size_t(c.D) + d] == 0);
        }
        CHECK(g->drow_scale[row] == 0);
        CHECK(g->dpolicy[row] == 0);
      }
    }
}

TEMPLATE_TEST_CASE("attention: NaN in a visible score gives a NaN row", "[attention][mask]", float, double) {
  using T = TestType;
  Case c{1, 1, 1, 4, 6, 3};
  Inputs<T> in = make_inputs<T>(c, Catch::rngSeed());
  in.q(0, 0, 2, 1) = std::numeric_limits<T>::quiet_NaN();
  auto check = [&](const auto& pol) {
    const Tensor4<T> o = entmax::attention(in.q, in.k, in.v, pol, in.opt);
    for (long i = 0; i < c.Nq; ++i)
      for (long d = 0; d < c.D; ++d) CHECK(std::isnan(o(0, 0, i, d)) == (i == 2));
  };
  check(entmax::Softmax{});
  check(entmax::Sparsemax{});
  check(entmax::Entmax15{});
}

// =============================================================================================
// Gradients by finite differences (double).

TEST_CASE("attention: row-scale and q gradients match central finite differences", "[attention][gradient]") {
  using T = double;
  const std::uint64_t seed = Catch::rngSeed();
  INFO("seed " << seed);
  Case c{1, 2, 1, 6, 11, 4};
  c.row_scale = true;
  c.causal = true;
  c.bias = 1;
  Inputs<T> in = make_inputs<T>(c, seed);
  auto loss = [&](const auto& pol, const Inputs<T>& x) {
    const Tensor4<T> o = entmax::attention(x.q, x.k, x.v, pol, x.opt);
    long double s = 0;
    for (Eigen::Index i = 0; i < o.size(); ++i) s += static_cast<long double>(o.data()[i]) * x.dout.data()[i];
    return static_cast<double>(s);
  };
  auto check = [&](const auto& pol, const char* name) {
    INFO(name);
    const auto g = entmax::attention_backward(in.q, in.k, in.v, in.dout, pol, in.opt);
    const double h = 1e-6;
    int checked = 0;
    for (Eigen::Index r = 0; r < in.row_scale.size(); ++r) {
      Inputs<T> plus = in, minus = in;
      plus.row_scale.data()[r] += h;
      minus.row_scale.data()[r] -= h;
      plus.opt.row_scale = entmax::view(plus.row_scale);
      minus.opt.row_scale = entmax::view(minus.row_scale);
      plus.opt.bias = entmax::view(plus.bias);
      minus.opt.bias = entmax::view(minus.bias);
      const double fd = (loss(pol, plus) - loss(pol, minus)) / (2 * h);
      const double an = g.drow_scale.data()[r];
      INFO("row " << r << ": analytic " << an << ", finite difference " << fd);
      CHECK(std::fabs(an - fd) <= 1e-6 * std::max(1.0, std::fabs(fd)));
      ++checked;
    }
    for (Eigen::Index e = 0; e < in.q.size(); e += 5) {
      Inputs<T> plus = in, minus = in;
      plus.q.data()[e] += h;
      minus.q.data()[e] -= h;
      for (auto* x : {&plus, &minus}) {
        x->opt.row_scale = entmax::view(x->row_scale);
        x->opt.bias = entmax::view(x->bias);
      }
      const double fd = (loss(pol, plus) - loss(pol, minus)) / (2 * h);
      const double an = g.dq.data()[e];
      INFO("q[" << e << "]: analytic " << an << ", finite difference " << fd);
      CHECK(std::fabs(an - fd) <= 1e-6 * std::max(1.0, std::fabs(fd)));
    }
    CHECK(checked == 12);
  };
  check(entmax::Softmax{}, "softmax");
  check(entmax::Entmax15{}, "entmax15");
}

// =============================================================================================
// Bad input and empty extents.

TEST_CASE("attention: shape errors throw std::invalid_argument naming tensors and shapes",
          "[attention][errors]") {
  using T = float;
  Tensor4<T> q(1, 4, 3, 8), k(1, 2, 5, 8), v(1, 2, 5, 8), dout(1, 4, 3, 8);
  q.setConstant(0.5f), k.setConstant(0.25f), v.setConstant(1.f), dout.setConstant(1.f);
  auto msg = [&](auto&& f) -> std::string {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no std::invalid_argument";
  };
  const entmax::Entmax15 pol;
  Tensor4<T> k3(1, 3, 5, 8), kd(1, 2, 5, 7), vbad(1, 2, 6, 8), dbad(1, 4, 3, 7);
  k3.setZero(), kd.setZero(), vbad.setZero(), dbad.setZero();
  CHECK_THAT(msg([&] { entmax::attention(q, k3, v, pol); }),
             Catch::Contains("entmax::attention") && Catch::Contains("k has shape [1, 3, 5, 8]") &&
                 Catch::Contains("q has shape [1, 4, 3, 8]"));
  CHECK_THAT(msg([&] { entmax::attention(q, kd, v, pol); }), Catch::Contains("k has shape [1, 2, 5, 7]"));
  CHECK_THAT(msg([&] { entmax::attention(q, k, vbad, pol); }),
             Catch::Contains("v has shape [1, 2, 6, 8]") && Catch::Contains("k has shape [1, 2, 5, 8]"));
  CHECK_THAT(msg([&] { entmax::attention_backward(q, k, v, dbad, pol); }),
             Catch::Contains("entmax::attention_backward") && Catch::Contains("dout has shape [1, 4, 3, 7]"));
  entmax::AttentionOptions<T> opt;
  opt.key_lengths = {3, 4};
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, pol, opt); }),
             Catch::Contains("key_lengths has 2 entries"));
  opt.key_lengths = {6};
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, pol, opt); }), Catch::Contains("key_lengths[0] = 6"));
  opt.key_lengths.clear();
  Eigen::Tensor<bool, 4, Eigen::RowMajor> mask(1, 3, 3, 5);
  mask.setConstant(true);
  opt.mask = entmax::view(mask);
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, pol, opt); }),
             Catch::Contains("mask has shape [1, 3, 3, 5]"));
  opt.mask = {};
  Tensor4<T> bias(1, 1, 3, 4);
  bias.setZero();
  opt.bias = entmax::view(bias);
  CHECK_THAT(msg([&] { entmax::attention_backward(q, k, v, dout, pol, opt); }),
             Catch::Contains("bias has shape [1, 1, 3, 4]"));
  opt.bias = {};
  opt.alibi_slopes = {1.f};
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, pol, opt); }),
             Catch::Contains("alibi_slopes has 1 entries"));
  opt.alibi_slopes.clear();
  Tensor3<T> rs(1, 4, 2);
  rs.setConstant(1.f);
  opt.row_scale = entmax::view(rs);
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, pol, opt); }),
             Catch::Contains("row_scale has shape [1, 4, 2]"));
  // Row scales must be finite and > 0: domain_error naming the first bad entry [b, h, i].
  Tensor3<T> rs_ok(1, 4, 3);
  for (T bad_value : {T(0), T(-1), std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()}) {
    rs_ok.setConstant(1.f);
    rs_ok(0, 2, 1) = bad_value;
    opt.row_scale = entmax::view(rs_ok);
    std::string m = "no std::domain_error";
    try {
      entmax::attention_backward(q, k, v, dout, pol, opt);
    } catch (const std::domain_error& e) {
      m = e.what();
    }
    CHECK_THAT(m, Catch::StartsWith("entmax::attention_backward: row_scale[0, 2, 1] must be finite and > 0"));
    CHECK_THROWS_AS(entmax::attention(q, k, v, pol, opt), std::domain_error);
  }
  opt.row_scale = {};
  // Saved RowStats must cover B x H x Nq = 12 rows.
  const std::vector<entmax::RowStats<T>> stats(11);
  CHECK_THAT(msg([&] { entmax::attention_backward(q, k, v, dout, pol, opt, &stats); }),
             Catch::StartsWith("entmax::attention_backward: row_stats has 11 entries") &&
                 Catch::Contains("q [1, 4, 3, 8] has 12 rows"));
  opt.scale = 0.f;
  CHECK_THROWS_AS(entmax::attention(q, k, v, pol, opt), std::domain_error);
  opt.scale = std::numeric_limits<T>::quiet_NaN();
  CHECK_THROWS_AS(entmax::attention_backward(q, k, v, dout, pol, opt), std::domain_error);
  opt.scale = 0.5f;
  CHECK_NOTHROW(entmax::attention(q, k, v, pol, opt));
  // ASEntmax with per-row beta/gamma for fewer rows than B x H x Nq = 12: rejected before any
  // read past the arrays (AddressSanitizer would flag the read otherwise).
  const std::vector<T> beta(11, 0.5f), gamma(11, 0.5f);
  const entmax::ASEntmax<T> short_rows(beta.data(), gamma.data(), beta.size());
  CHECK_THAT(msg([&] { entmax::attention(q, k, v, short_rows); }),
             Catch::Contains("entmax::attention") && Catch::Contains("12 score rows"));
  CHECK_THAT(msg([&] { entmax::attention_backward(q, k, v, dout, short_rows); }),
             Catch::Contains("entmax::attention_backward") && Catch::Contains("12 score rows"));
  const std::vector<T> beta12(12, 0.5f), gamma12(12, 0.5f);
  CHECK_NOTHROW(entmax::attention(q, k, v, entmax::ASEntmax<T>(beta12.data(), gamma12.data(), 12)));
}

TEMPLATE_TEST_CASE("attention: empty extents are no-ops", "[attention][empty]", float, double) {
  using T = TestType;
  const entmax::Sparsemax pol;
  {
    Tensor4<T> q(2, 2, 0, 4), k(2, 1, 3, 4), v(2, 1, 3, 4);
    k.setConstant(1), v.setConstant(1);
    const Tensor4<T> o = entmax::attention(q, k, v, pol);
    CHECK(o.size() == 0);
    const auto g = entmax::attention_backward(q, k, v, q, pol);
    CHECK(g.dq.size() == 0);
    CHECK(g.dk.size() == 24);
    bool zero = true;
    for (Eigen::Index i = 0; i < g.dk.size(); ++i) zero = zero && g.dk.data()[i] == 0 && g.dv.data()[i] == 0;
    CHECK(zero);
  }
  {
    Tensor4<T> q(1, 2, 3, 4), k(1, 2, 0, 4), v(1, 2, 0, 4), dout(1, 2, 3, 4);
    q.setConstant(1), dout.setConstant(1);
    const Tensor4<T> o = entmax::attention(q, k, v, pol);
    REQUIRE(o.size() == 24);
    for (Eigen::Index i = 0; i < o.size(); ++i) CHECK(o.data()[i] == 0);
    const auto g = entmax::attention_backward(q, k, v, dout, pol);
    for (Eigen::Index i = 0; i < g.dq.size(); ++i) CHECK(g.dq.data()[i] == 0);
  }
  {
    Tensor4<T> q(0, 0, 3, 4), k(0, 0, 3, 4), v(0, 0, 3, 4);
    CHECK(entmax::attention(q, k, v, pol).size() == 0);
  }
}

TEMPLATE_TEST_CASE("attention: TensorMap inputs give the same results as Tensors", "[attention][map]", float,
                   double) {
  using T = TestType;
  Case c{1, 2, 1, 7, 9, 5};
  c.causal = true;
  const Inputs<T> in = make_inputs<T>(c, Catch::rngSeed());
  const entmax::Entmax15 pol;
  const Tensor4<T> o = entmax::attention(in.q, in.k, in.v, pol, in.opt);
  std::vector<T> qbuf(in.q.data(), in.q.data() + in.q.size());
  Eigen::TensorMap<Tensor4<T>> qm(qbuf.data(), c.B, c.H, c.Nq, c.D);
  Eigen::TensorMap<const Tensor4<T>> km(in.k.data(), c.B, c.KH, c.Nk, c.D);
  Eigen::TensorMap<const Tensor4<T>> vm(in.v.data(), c.B, c.KH, c.Nk, c.D);
  const Tensor4<T> om = entmax::attention(qm, km, vm, pol, in.opt);
  CHECK(std::memcmp(o.data(), om.data(), sizeof(T) * std::size_t(o.size())) == 0);
  Eigen::TensorMap<const Tensor4<T>> dm(in.dout.data(), c.B, c.H, c.Nq, c.D);
  const auto g1 = entmax::attention_backward(in.q, in.k, in.v, in.dout, pol, in.opt);
  const auto g2 = entmax::attention_backward(qm, km, vm, dm, pol, in.opt);
  CHECK(std::memcmp(g1.dq.data(), g2.dq.data(), sizeof(T) * std::size_t(g1.dq.size())) == 0);
  CHECK(std::memcmp(g1.dk.data(), g2.dk.data(), sizeof(T) * std::size_t(g1.dk.size())) == 0);
}

// =============================================================================================
// Row-scaled policies of the library: ASEntmax (per-row β, γ) and scalable softmax.

TEMPLATE_TEST_CASE("attention with ASEntmax and ScalableSoftmax vs the long-double reference",
                   "[attention][row_scaled]", float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  for (int variant = 0; variant < 4; ++variant) {
    Case c{2, 2, 1, 13, variant < 2 ? 13 : 40, 8};
    c.causal = variant != 1;
    c.key_len = variant == 3;
    c.mask = variant == 2 ? 2 : 0;
    c.row_scale = variant == 3;
    c.block_rows = variant % 2 ? 4 : 0;
    INFO(describe(c) << " seed " << seed);
    const Inputs<T> in = make_inputs<T>(c, seed + std::uint64_t(variant));
    const auto rows = static_cast<std::size_t>(c.B * c.H * c.Nq);
    std::vector<T> beta(rows), gamma(rows);
    for (std::size_t r = 0; r < rows; ++r) {
      beta[r] = static_cast<T>(0.2 + unif(rng));
      gamma[r] = static_cast<T>(-1.0 + 2.0 * unif(rng));
    }
    // log(npos) of each row, npos = visible keys + 1 (0 for a row that sees nothing).
    std::vector<ld> log_npos(rows, 0);
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t b = r / std::size_t(c.H * c.Nq), i = r % std::size_t(c.Nq);
      std::size_t vis = 0;
      for (long j = 0; j < c.Nk; ++j) {
        bool ok = !c.causal || ld(j) <= ld(i) + ld(c.Nk) - ld(c.Nq);
        if (!in.opt.key_lengths.empty()) ok = ok && j < in.opt.key_lengths[b];
        if (c.mask) ok = ok && in.mask(0, 0, long(i), j);
        vis += ok;
      }
      if (vis > 0) log_npos[r] = std::log(ld(vis + 1));
    }
    // The library against the long-double reference, within the bound of a naive same-type
    // evaluation (NUMERICS.md); `scale` is the policy's row scale, `grads` maps the reference's
    // dL/d(scale) per row to the policy's parameter gradients (compared likewise).
    const auto sz = [](long a) { return static_cast<std::size_t>(a); };
    auto check = [&](const auto& pol, ld alpha, auto scale, auto grads,
                     const std::vector<std::vector<T>*>& sinks) {
      auto reference = [&](auto zero) {
        using R = decltype(zero);
        auto ropt = in.template ref_options<R>();
        ropt.policy_scale = [&](std::size_t r, std::size_t npos) { return static_cast<R>(scale(r, npos)); };
        return entmax_ref::attention<R>(to_vec<R>(in.q), to_vec<R>(in.k), to_vec<R>(in.v), to_vec<R>(in.dout),
                                        sz(c.B), sz(c.H), sz(c.KH), sz(c.Nq), sz(c.Nk), sz(c.D),
                                        entmax_ref::RowMap<R>{static_cast<R>(alpha)}, ropt);
      };
      const auto ref = reference(ld(0));
      const auto naive = reference(T(0));
      const Tensor4<T> o = entmax::attention(in.q, in.k, in.v, pol, in.opt);
      const auto g = entmax::attention_backward(in.q, in.k, in.v, in.dout, pol, in.opt);
      auto compare = [&](const char* name, const std::vector<ld>& got, const std::vector<ld>& want,
                         const std::vector<ld>& nv) {
        REQUIRE(got.size() == want.size());
        const ld err = max_abs_diff(got, want, got.size());
        const ld tol = tolerance<T>(max_abs_diff(nv, want, got.size()), max_abs(want, want.size()));
        INFO(name << ": error " << double(err) << ", tol " << double(tol));
        CHECK(err <= tol);
      };
      compare("o", to_vec<ld>(o), ref.o, to_vec<ld>(naive.o));
      compare("dq", to_vec<ld>(g.dq), ref.dq, to_vec<ld>(naive.dq));
      compare("dk", to_vec<ld>(g.dk), ref.dk, to_vec<ld>(naive.dk));
      compare("dv", to_vec<ld>(g.dv), ref.dv, to_vec<ld>(naive.dv));
      if (c.row_scale)
        compare("drow_scale", to_vec<ld>(g.drow_scale), ref.drow_scale, to_vec<ld>(naive.drow_scale));
      const auto want = grads(ref.dpolicy_scale), nv = grads(to_vec<ld>(naive.dpolicy_scale));
      for (std::size_t k = 0; k < sinks.size(); ++k)
        compare("policy gradient", to_vec<ld>(*sinks[k]), want[k], nv[k]);
    };
    for (const ld alpha : {1.5L, 1.25L}) {
      INFO("ASEntmax alpha " << double(alpha));
      entmax::ASEntmax<T> pol(beta.data(), gamma.data(), rows, T(alpha), T(1));
      std::vector<T> dbeta(rows, T(-9)), dgamma(rows, T(-9));
      pol.set_gradient_sinks(dbeta.data(), dgamma.data());
      // s = 1 + β log(npos)^γ: dβ = ds · log(npos)^γ, dγ = ds · β log(npos)^γ log log(npos).
      auto scale = [&](std::size_t r, std::size_t npos) {
        return 1 + ld(beta[r]) * std::pow(std::log(ld(npos)), ld(gamma[r]));
      };
      auto grads = [&](const std::vector<ld>& ds) {
        std::vector<std::vector<ld>> out(2, std::vector<ld>(rows, 0));
        for (std::size_t r = 0; r < rows; ++r) {
          if (log_npos[r] == 0) continue;
          const ld Lg = std::pow(log_npos[r], ld(gamma[r]));
          out[0][r] = ds[r] * Lg;
          out[1][r] = ds[r] * ld(beta[r]) * Lg * std::log(log_npos[r]);
        }
        return out;
      };
      check(pol, alpha, scale, grads, {&dbeta, &dgamma});
    }
    {
      INFO("ScalableSoftmax");
      const T s0 = T(0.8);
      entmax::ScalableSoftmax<T> pol(s0);
      std::vector<T> ds(rows, T(-9));
      pol.set_gradient_sink(ds.data());
      // c = s log(npos): the per-row sink holds dL/dc · log(npos).
      auto scale = [&](std::size_t, std::size_t npos) { return ld(s0) * std::log(ld(npos)); };
      auto grads = [&](const std::vector<ld>& dc) {
        std::vector<std::vector<ld>> out(1, std::vector<ld>(rows, 0));
        for (std::size_t r = 0; r < rows; ++r) out[0][r] = dc[r] * log_npos[r];
        return out;
      };
      check(pol, 1, scale, grads, {&ds});
    }
  }
}

// =============================================================================================
// Decoding: a few queries against a long key cache (keys split into chunks).

TEMPLATE_TEST_CASE("attention: decoding against a long cache vs reference, bitwise across threads",
                   "[attention][decode]", float, double) {
  using T = TestType;
  const std::uint64_t seed = Catch::rngSeed();
  for (int variant = 0; variant < 3; ++variant) {
    Case c{1, 2, 1, variant == 0 ? 1 : 3, 9000, 8};
    c.causal = variant != 0;
    c.key_len = variant == 2;
    c.mask = variant == 2 ? 1 : 0;
    c.row_scale = variant == 1;
    c.sd = 2.0;
    check_case<T>(c, entmax::Softmax{}, 1, seed + std::uint64_t(variant));
    check_case<T>(c, entmax::Entmax15{}, 1.5L, seed + std::uint64_t(variant));
    INFO(describe(c) << " seed " << seed);
    const Inputs<T> in = make_inputs<T>(c, seed + std::uint64_t(variant));
    for (unsigned t : {2u, 3u}) {
      const LibResult one = run_library(in, entmax::Entmax15{}, 1),
                      many = run_library(in, entmax::Entmax15{}, t);
      CHECK(std::equal(one.o.begin(), one.o.end(), many.o.begin(), many.o.end()));
      CHECK(one.support == many.support);
    }
  }
}
