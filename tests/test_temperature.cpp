#include <entmax/temperature.hpp>

#include <entmax/asentmax.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using ld = long double;

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// Random parameters and inputs, seeded.
template <class T>
void randomize(entmax::AdaptiveTemperature<T>& t, RowMatrix<T>& x, std::mt19937_64& rng, double wscale) {
  std::normal_distribution<double> nd(0.0, 1.0);
  auto gen = [&](auto& m, double sc) {
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(sc * nd(rng));
  };
  gen(t.w_beta, wscale);
  gen(t.w_gamma, wscale);
  gen(t.b_beta, 1.0);
  gen(t.b_gamma, 1.0);
  gen(x, 1.0);
}

// Naive long-double forward of the authors' parameterisation.
ld ref_beta(const entmax::AdaptiveTemperature<double>& t, const RowMatrix<double>& x, Eigen::Index tok,
            Eigen::Index h) {
  ld a = static_cast<ld>(t.b_beta(h));
  for (Eigen::Index k = 0; k < x.cols(); ++k)
    a += static_cast<ld>(t.w_beta(h, k)) * static_cast<ld>(x(tok, k));
  return std::log1p(std::exp(a));
}
ld ref_gamma(const entmax::AdaptiveTemperature<double>& t, const RowMatrix<double>& x, Eigen::Index tok,
             Eigen::Index h) {
  ld a = static_cast<ld>(t.b_gamma(h));
  for (Eigen::Index k = 0; k < x.cols(); ++k)
    a += static_cast<ld>(t.w_gamma(h, k)) * static_cast<ld>(x(tok, k));
  return 2 * std::tanh(a);
}

// A scalar loss L = Σ cb ⊙ β + Σ cg ⊙ γ (so dL/dβ = cb, dL/dγ = cg).
double loss(const entmax::AdaptiveTemperature<double>& t, const RowMatrix<double>& x,
            const RowMatrix<double>& cb, const RowMatrix<double>& cg) {
  const auto out = t.forward(x);
  return (out.beta.cwiseProduct(cb).sum()) + (out.gamma.cwiseProduct(cg).sum());
}

bool rel_close(double got, double want, double rel, double abs_floor) {
  return std::fabs(got - want) <= rel * std::fabs(want) + abs_floor;
}

}  // namespace

TEMPLATE_TEST_CASE("AdaptiveTemperature forward matches a long-double reference", "[temperature]", float,
                   double) {
  using T = TestType;
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 11);
  for (std::size_t heads : {1u, 3u, 8u}) {
    for (std::size_t d : {1u, 5u, 17u}) {
      entmax::AdaptiveTemperature<T> t(heads, d);
      RowMatrix<T> x(7, static_cast<Eigen::Index>(d));
      randomize(t, x, rng, 1.0);
      const auto out = t.forward(x);
      REQUIRE(out.beta.rows() == 7);
      REQUIRE(out.beta.cols() == static_cast<Eigen::Index>(heads));
      entmax::AdaptiveTemperature<double> td(heads, d);
      td.w_beta = t.w_beta.template cast<double>();
      td.w_gamma = t.w_gamma.template cast<double>();
      td.b_beta = t.b_beta.template cast<double>();
      td.b_gamma = t.b_gamma.template cast<double>();
      const RowMatrix<double> xd = x.template cast<double>();
      // f32: the pre-activation is a length-d dot product in float.
      const double tol = std::is_same_v<T, float> ? 1e-5 * static_cast<double>(d + 1) : 1e-14;
      for (Eigen::Index i = 0; i < 7; ++i) {
        for (Eigen::Index h = 0; h < static_cast<Eigen::Index>(heads); ++h) {
          const double rb = static_cast<double>(ref_beta(td, xd, i, h));
          const double rg = static_cast<double>(ref_gamma(td, xd, i, h));
          CHECK(out.beta(i, h) >= T(0));
          CHECK(std::fabs(out.gamma(i, h)) <= T(2));
          CHECK(rel_close(static_cast<double>(out.beta(i, h)), rb, tol, tol));
          CHECK(rel_close(static_cast<double>(out.gamma(i, h)), rg, tol, tol));
        }
      }
    }
  }
}

TEST_CASE("AdaptiveTemperature forward is stable for huge pre-activations", "[temperature]") {
  entmax::AdaptiveTemperature<double> t(2, 1);
  t.w_beta << 1.0, -1.0;
  t.w_gamma << 1.0, -1.0;
  RowMatrix<double> x(1, 1);
  x << 800.0;  // exp(800) overflows double
  const auto out = t.forward(x);
  CHECK(out.beta(0, 0) == 800.0);
  CHECK(out.beta(0, 1) >= 0.0);
  CHECK(out.beta(0, 1) < 1e-300);
  CHECK(out.gamma(0, 0) == 2.0);
  CHECK(out.gamma(0, 1) == -2.0);
  const RowMatrix<double> ones = RowMatrix<double>::Ones(1, 2);
  const auto g = t.backward(x, ones, ones);
  CHECK(std::isfinite(g.dx(0, 0)));
  CHECK(g.db_beta(0) == 1.0);   // sigmoid(800) = 1
  CHECK(g.db_gamma(0) == 0.0);  // sech²(800) = 0, not NaN
  CHECK(g.dw_beta(0, 0) == 800.0);
}

TEST_CASE("AdaptiveTemperature backward equals central finite differences", "[temperature]") {
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 29);
  std::normal_distribution<double> nd(0.0, 1.0);
  const std::size_t heads = 4, d = 6;
  const Eigen::Index tokens = 5;
  entmax::AdaptiveTemperature<double> t(heads, d);
  RowMatrix<double> x(tokens, static_cast<Eigen::Index>(d));
  randomize(t, x, rng, 0.5);
  RowMatrix<double> cb(tokens, static_cast<Eigen::Index>(heads)),
      cg(tokens, static_cast<Eigen::Index>(heads));
  for (Eigen::Index i = 0; i < cb.size(); ++i) cb.data()[i] = nd(rng), cg.data()[i] = nd(rng);
  const auto g = t.backward(x, cb, cg);

  const double h = 1e-5;
  auto fd = [&](double& param) {
    const double saved = param;
    param = saved + h;
    const double lp = loss(t, x, cb, cg);
    param = saved - h;
    const double lm = loss(t, x, cb, cg);
    param = saved;
    return (lp - lm) / (2 * h);
  };
  // Central differences with h = 1e-5 on smooth functions of O(1): error ~ h² + ε/h ≈ 1e-10.
  const double rel = 1e-6, floor = 1e-8;
  for (Eigen::Index i = 0; i < t.w_beta.size(); ++i) {
    CHECK(rel_close(g.dw_beta.data()[i], fd(t.w_beta.data()[i]), rel, floor));
    CHECK(rel_close(g.dw_gamma.data()[i], fd(t.w_gamma.data()[i]), rel, floor));
  }
  for (Eigen::Index i = 0; i < t.b_beta.size(); ++i) {
    CHECK(rel_close(g.db_beta(i), fd(t.b_beta(i)), rel, floor));
    CHECK(rel_close(g.db_gamma(i), fd(t.b_gamma(i)), rel, floor));
  }
  for (Eigen::Index i = 0; i < x.size(); ++i) CHECK(rel_close(g.dx.data()[i], fd(x.data()[i]), rel, floor));
}

TEST_CASE("AdaptiveTemperature accepts column-major inputs and blocks", "[temperature]") {
  std::mt19937_64 rng(Catch::rngSeed() + 3);
  entmax::AdaptiveTemperature<double> t(3, 4);
  RowMatrix<double> x(6, 4);
  randomize(t, x, rng, 1.0);
  const Eigen::MatrixXd xc = x;  // column-major copy
  const auto a = t.forward(x);
  const auto b = t.forward(xc);
  CHECK(a.beta.isApprox(b.beta, 1e-15));
  CHECK(a.gamma.isApprox(b.gamma, 1e-15));
  Eigen::MatrixXd big = Eigen::MatrixXd::Zero(10, 9);
  big.block(2, 3, 6, 4) = xc;
  const auto c = t.forward(big.block(2, 3, 6, 4));
  CHECK(c.beta == b.beta);
}

TEST_CASE("AdaptiveTemperature rejects bad shapes before computing", "[temperature][errors]") {
  entmax::AdaptiveTemperature<double> t(3, 4);
  RowMatrix<double> x(2, 5);
  CHECK_THROWS_AS(t.forward(x), std::invalid_argument);
  RowMatrix<double> xok(2, 4);
  xok.setZero();
  RowMatrix<double> bad(2, 2), good(2, 3);
  bad.setZero();
  good.setZero();
  CHECK_THROWS_AS(t.backward(xok, bad, good), std::invalid_argument);
  CHECK_THROWS_AS(t.backward(xok, good, bad), std::invalid_argument);
  CHECK_NOTHROW(t.backward(xok, good, good));
  t.b_gamma.resize(2);
  CHECK_THROWS_AS(t.forward(xok), std::invalid_argument);
  try {
    t.forward(xok);
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("AdaptiveTemperature::forward") != std::string::npos);
  }
  // Zero tokens: empty outputs, no error.
  entmax::AdaptiveTemperature<double> t2(3, 4);
  RowMatrix<double> x0(0, 4);
  const auto out = t2.forward(x0);
  CHECK(out.beta.rows() == 0);
  CHECK(out.beta.cols() == 3);
}

TEST_CASE("tokens_to_rows and rows_to_tokens are inverse reorderings", "[temperature]") {
  const std::size_t batch = 2, heads = 3, n = 4;
  RowMatrix<float> m(static_cast<Eigen::Index>(batch * n), static_cast<Eigen::Index>(heads));
  for (Eigen::Index i = 0; i < m.rows(); ++i)
    for (Eigen::Index h = 0; h < m.cols(); ++h) m(i, h) = static_cast<float>(100 * i + h);
  const std::vector<float> rows = entmax::tokens_to_rows(m, batch, n);
  REQUIRE(rows.size() == batch * heads * n);
  // Row (b, h, i) holds token b*n + i, head h.
  for (std::size_t b = 0; b < batch; ++b)
    for (std::size_t h = 0; h < heads; ++h)
      for (std::size_t i = 0; i < n; ++i)
        CHECK(rows[(b * heads + h) * n + i] == static_cast<float>(100 * (b * n + i) + h));
  const auto back = entmax::rows_to_tokens(rows.data(), batch, heads, n);
  CHECK(back == m);
  CHECK_THROWS_AS(entmax::tokens_to_rows(m, batch, n + 1), std::invalid_argument);
}

namespace {

// The authors' pipeline on causal rows: temperature -> per-row β, γ -> ASEntmax(1.5) per row,
// L = Σ_rows ⟨dp, p⟩. Returns L and the support of every row (to detect support changes).
struct Pipeline {
  std::size_t batch = 2, heads = 3, n = 6, d = 4;
  std::vector<double> scores, dp;  // [batch, heads, n, n], row (b, h, i) sees keys j <= i

  double loss(const entmax::AdaptiveTemperature<double>& t, const RowMatrix<double>& x,
              std::vector<std::size_t>* supports) const {
    const auto out = t.forward(x);
    const auto br = entmax::tokens_to_rows(out.beta, batch, n);
    const auto gr = entmax::tokens_to_rows(out.gamma, batch, n);
    entmax::ASEntmax<double> pol(br.data(), gr.data(), br.size());
    double l = 0;
    std::vector<double> p(n);
    if (supports) supports->clear();
    for (std::size_t row = 0; row < batch * heads * n; ++row) {
      const std::size_t i = row % n;
      const auto st = pol.forward(row, i + 2, scores.data() + row * n, p.data(), n);
      if (supports) supports->push_back(st.support);
      for (std::size_t j = 0; j < n; ++j)
        if (p[j] != 0) l += dp[row * n + j] * p[j];
    }
    return l;
  }

  entmax::TemperatureGrad<double> grad(const entmax::AdaptiveTemperature<double>& t,
                                       const RowMatrix<double>& x) const {
    const auto out = t.forward(x);
    const auto br = entmax::tokens_to_rows(out.beta, batch, n);
    const auto gr = entmax::tokens_to_rows(out.gamma, batch, n);
    entmax::ASEntmax<double> pol(br.data(), gr.data(), br.size());
    std::vector<double> dbeta(br.size()), dgamma(br.size());
    pol.set_gradient_sinks(dbeta.data(), dgamma.data());
    std::vector<double> p(n), dz(n);
    for (std::size_t row = 0; row < batch * heads * n; ++row) {
      const std::size_t i = row % n;
      pol.forward(row, i + 2, scores.data() + row * n, p.data(), n);
      pol.backward(row, i + 2, scores.data() + row * n, p.data(), dp.data() + row * n, dz.data(), n);
    }
    return t.backward(x, entmax::rows_to_tokens(dbeta.data(), batch, heads, n),
                      entmax::rows_to_tokens(dgamma.data(), batch, heads, n));
  }
};

}  // namespace

TEST_CASE("Temperature -> ASEntmax -> loss: end-to-end gradients equal finite differences",
          "[temperature][asentmax]") {
  const auto seed = Catch::rngSeed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed + 97);
  std::normal_distribution<double> nd(0.0, 1.0);
  Pipeline pl;
  const std::size_t rows = pl.batch * pl.heads * pl.n;
  pl.scores.resize(rows * pl.n);
  pl.dp.resize(rows * pl.n);
  for (std::size_t row = 0; row < rows; ++row)
    for (std::size_t j = 0; j < pl.n; ++j) {
      pl.scores[row * pl.n + j] = j <= row % pl.n ? nd(rng) : -std::numeric_limits<double>::infinity();
      pl.dp[row * pl.n + j] = nd(rng);
    }
  entmax::AdaptiveTemperature<double> t(pl.heads, pl.d);
  RowMatrix<double> x(static_cast<Eigen::Index>(pl.batch * pl.n), static_cast<Eigen::Index>(pl.d));
  randomize(t, x, rng, 0.5);
  const auto g = pl.grad(t, x);
  std::vector<std::size_t> s0, sp, sm;
  pl.loss(t, x, &s0);
  const double h = 1e-6;
  std::size_t checked = 0, total = 0;
  auto check_param = [&](double& param, double analytic) {
    ++total;
    const double saved = param;
    param = saved + h;
    const double lp = pl.loss(t, x, &sp);
    param = saved - h;
    const double lm = pl.loss(t, x, &sm);
    param = saved;
    if (sp != s0 || sm != s0) return;  // a row's support changed inside the step
    ++checked;
    CHECK(rel_close(analytic, (lp - lm) / (2 * h), 1e-6, 1e-8));
  };
  for (Eigen::Index i = 0; i < t.w_beta.size(); ++i) {
    check_param(t.w_beta.data()[i], g.dw_beta.data()[i]);
    check_param(t.w_gamma.data()[i], g.dw_gamma.data()[i]);
  }
  for (Eigen::Index i = 0; i < t.b_beta.size(); ++i) {
    check_param(t.b_beta(i), g.db_beta(i));
    check_param(t.b_gamma(i), g.db_gamma(i));
  }
  for (Eigen::Index i = 0; i < x.size(); ++i) check_param(x.data()[i], g.dx.data()[i]);
  CHECK(checked * 4 >= total * 3);
  // The gradient is not trivially zero.
  CHECK(g.db_beta.cwiseAbs().maxCoeff() > 1e-6);
}
