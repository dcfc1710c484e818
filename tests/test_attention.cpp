// Tests of entmax::attention / attention_backward against the golden float64 vectors of the
// PyTorch reference and a naive long-double reference (tests/reference/attention.hpp).
#include <entmax/attention.hpp>

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
    else
      continue;  // entmax_bisect_1.25: see the bisect test below
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
  CHECK(checked == 21);
}
