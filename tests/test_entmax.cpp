// The umbrella header and the public API contract of ARCHITECTURE.md: code outside the repository
// compiles against exactly these names. Every named function is called with float and double
// and its result checked against values known in closed form (not computed by the library).
#include <entmax/entmax.hpp>

#include <catch2/catch.hpp>

#include <unsupported/Eigen/CXX11/Tensor>

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

template <class T>
T tol() {
  return 16 * std::numeric_limits<T>::epsilon();
}

template <class T>
T sum(const std::vector<T>& v) {
  T s = 0;
  for (T x : v) s += x;
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("API contract: row forward maps", "[api]", float, double) {
  using T = TestType;
  const std::size_t n = 2;
  // softmax([0, log 3]) = [1/4, 3/4]
  const std::vector<T> zs = {T(0), static_cast<T>(std::log(3.0))};
  std::vector<T> p(n);
  entmax::softmax(zs.data(), p.data(), n);
  CHECK(std::fabs(p[0] - T(0.25)) <= tol<T>());
  CHECK(std::fabs(p[1] - T(0.75)) <= tol<T>());

  // sparsemax([0.5, 0]) = [0.75, 0.25] (tau = -0.25); sparsemax([2, 0]) = [1, 0]
  const std::vector<T> z = {T(0.5), T(0)};
  entmax::sparsemax(z.data(), p.data(), n);
  CHECK(std::fabs(p[0] - T(0.75)) <= tol<T>());
  CHECK(std::fabs(p[1] - T(0.25)) <= tol<T>());
  const std::vector<T> far = {T(2), T(0)};
  entmax::sparsemax(far.data(), p.data(), n);
  CHECK(p[0] == T(1));
  CHECK(p[1] == T(0));

  // entmax15 of two scores d apart: p_i = (d_i/2 - tau)^2; for z = [1, 0]:
  // (1/2 - tau)^2 + tau^2 = 1 on the support => tau = (1/2 - sqrt(7/4)) / 2 ... solve exactly:
  // 2 tau^2 - tau + 1/4 - 1 = 0 => tau = (1 - sqrt(7)) / 4, p0 = (1/2 - tau)^2.
  const std::vector<T> z15 = {T(1), T(0)};
  entmax::entmax15(z15.data(), p.data(), n);
  const double tau15 = (1.0 - std::sqrt(7.0)) / 4.0;
  CHECK(std::fabs(p[0] - static_cast<T>((0.5 - tau15) * (0.5 - tau15))) <= tol<T>());
  CHECK(std::fabs(p[1] - static_cast<T>(tau15 * tau15)) <= tol<T>());

  // entmax_bisect at alpha = 2 is sparsemax; in place (z and p alias).
  std::vector<T> inplace = z;
  entmax::entmax_bisect(inplace.data(), inplace.data(), n, T(2));
  CHECK(std::fabs(inplace[0] - T(0.75)) <= tol<T>());
  CHECK(std::fabs(inplace[1] - T(0.25)) <= tol<T>());
  CHECK(std::fabs(sum(inplace) - T(1)) <= tol<T>());
}

TEMPLATE_TEST_CASE("API contract: row backward maps and the alpha gradient", "[api]", float, double) {
  using T = TestType;
  const std::size_t n = 3;
  const std::vector<T> z = {T(0.5), T(0), T(-3)};
  const std::vector<T> dp = {T(1), T(-2), T(5)};
  std::vector<T> p(n), dz(n);

  // softmax: dz = p ⊙ (dp − ⟨p, dp⟩)
  entmax::softmax(z.data(), p.data(), n);
  entmax::softmax_backward(p.data(), dp.data(), dz.data(), n);
  double dot = 0;
  for (std::size_t i = 0; i < n; ++i) dot += double(p[i]) * double(dp[i]);
  for (std::size_t i = 0; i < n; ++i)
    CHECK(std::fabs(dz[i] - static_cast<T>(p[i] * (dp[i] - dot))) <= 4 * tol<T>());

  // sparsemax: support {0, 1} (p = [0.75, 0.25, 0]): dz = dp − mean over the support, 0 outside.
  entmax::sparsemax(z.data(), p.data(), n);
  entmax::sparsemax_backward(p.data(), dp.data(), dz.data(), n);
  CHECK(std::fabs(dz[0] - T(1.5)) <= tol<T>());
  CHECK(std::fabs(dz[1] - T(-1.5)) <= tol<T>());
  CHECK(dz[2] == T(0));

  // entmax15: u = sqrt(p) on the support, dz = u ⊙ dp − (⟨u, dp⟩ / Σu) u.
  entmax::entmax15(z.data(), p.data(), n);
  entmax::entmax15_backward(p.data(), dp.data(), dz.data(), n);
  double su = 0, sud = 0;
  for (std::size_t i = 0; i < n; ++i) su += std::sqrt(double(p[i])), sud += std::sqrt(double(p[i])) * dp[i];
  for (std::size_t i = 0; i < n; ++i) {
    const double u = std::sqrt(double(p[i]));
    CHECK(std::fabs(dz[i] - static_cast<T>(u * dp[i] - sud / su * u)) <= 4 * tol<T>());
  }

  // entmax_bisect_backward at alpha = 2 is sparsemax's; dp = c·1 gives dz = 0.
  entmax::entmax_bisect(z.data(), p.data(), n, T(2));
  entmax::entmax_bisect_backward(p.data(), dp.data(), dz.data(), n, T(2));
  CHECK(std::fabs(dz[0] - T(1.5)) <= 4 * tol<T>());
  CHECK(std::fabs(dz[1] - T(-1.5)) <= 4 * tol<T>());
  const std::vector<T> ones(n, T(1));
  entmax::entmax_bisect(z.data(), p.data(), n, T(1.3));
  entmax::entmax_bisect_backward(p.data(), ones.data(), dz.data(), n, T(1.3));
  for (T v : dz) CHECK(std::fabs(v) <= 4 * tol<T>());

  // dL/dalpha: a constant dp has zero alpha-gradient (Σp = 1 for every alpha); a non-constant one
  // matches the formula of NUMERICS.md evaluated here in double.
  const T a = T(1.5);
  entmax::entmax_bisect(z.data(), p.data(), n, a);
  const T g_const = entmax::entmax_alpha_grad(p.data(), ones.data(), n, a);
  CHECK(std::fabs(g_const) <= 8 * tol<T>());
  const T g = entmax::entmax_alpha_grad(p.data(), dp.data(), n, a);
  static_assert(std::is_same_v<decltype(entmax::entmax_alpha_grad(p.data(), dp.data(), n, a)), T>,
                "entmax_alpha_grad returns T");
  double su2 = 0, hp = 0, expect = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] > 0) su2 += std::sqrt(double(p[i])), hp += double(p[i]) * std::log(double(p[i]));
  for (std::size_t i = 0; i < n; ++i) {
    if (!(p[i] > 0)) continue;
    const double pi = p[i], ut = std::sqrt(pi) / su2, s = pi * std::log(pi);
    expect += dp[i] * ((pi - ut) / 0.25 - (s - ut * hp) / 0.5);
  }
  CHECK(std::fabs(g - static_cast<T>(expect)) <= 64 * tol<T>() * std::max(1.0, std::fabs(expect)));
}

TEMPLATE_TEST_CASE("API contract: asentmax row and its parameter gradients", "[api]", float, double) {
  using T = TestType;
  const std::size_t n = 4, npos = n + 1;
  const std::vector<T> z = {T(1), T(0.5), T(-1), -std::numeric_limits<T>::infinity()};
  const std::vector<T> dp = {T(0.3), T(-1), T(2), T(7)};
  std::vector<T> p(n), dz(n), p15(n), scaled(n);
  const T alpha = T(1.5), beta = T(0.5), gamma = T(1), delta = T(1);
  entmax::asentmax(z.data(), p.data(), n, alpha, beta, gamma, delta, npos);
  // s = delta + beta * log(npos)^gamma, then entmax15 of s·z.
  const T s = static_cast<T>(1.0 + 0.5 * std::log(double(npos)));
  for (std::size_t i = 0; i < n; ++i) scaled[i] = s * z[i];
  entmax::entmax15(scaled.data(), p15.data(), n);
  for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(p[i] - p15[i]) <= tol<T>());
  CHECK(p[3] == T(0));
  auto g =
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, beta, gamma, delta, npos);
  // dbeta = ds · log(npos)^gamma and dgamma = ds · beta · log(npos)^gamma · log(log npos), with
  // ds = ⟨J(p)ᵀ dp, z⟩ over the unmasked entries.
  std::vector<T> g15(n);
  entmax::entmax15_backward(p.data(), dp.data(), g15.data(), n);
  double ds = 0;
  for (std::size_t i = 0; i + 1 < n; ++i) ds += double(g15[i]) * double(z[i]);
  const double l = std::log(double(npos));
  CHECK(std::fabs(g.dbeta - static_cast<T>(ds * l)) <= 64 * tol<T>());
  CHECK(std::fabs(g.dgamma - static_cast<T>(ds * 0.5 * l * std::log(l))) <= 64 * tol<T>());
  for (std::size_t i = 0; i < n; ++i) CHECK(std::fabs(dz[i] - s * g15[i]) <= 4 * tol<T>());
  CHECK(dz[3] == T(0));
}

TEMPLATE_TEST_CASE("API contract: attention over row-major rank-4 tensors", "[api]", float, double) {
  using T = TestType;
  using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;
  const Eigen::Index B = 1, H = 2, Nq = 3, Nk = 3, D = 4;
  Tensor4 q(B, H, Nq, D), k(B, H, Nk, D), v(B, H, Nk, D), dout(B, H, Nq, D);
  q.setZero();  // all scores 0: every visible key gets equal mass, whatever the normalizer
  k.setRandom();
  v.setRandom();
  dout.setRandom();
  entmax::AttentionOptions<T> opt;
  opt.causal = true;
  opt.scale = T(1) / std::sqrt(T(D));

  // Causal, Nq = Nk: query i sees keys 0..i with equal scores, so o_i = mean(v_0..v_i).
  auto check_means = [&](const Tensor4& o) {
    for (Eigen::Index h = 0; h < H; ++h)
      for (Eigen::Index i = 0; i < Nq; ++i)
        for (Eigen::Index d = 0; d < D; ++d) {
          T m = 0;
          for (Eigen::Index j = 0; j <= i; ++j) m += v(0, h, j, d);
          m /= T(i + 1);
          CHECK(std::fabs(o(0, h, i, d) - m) <= 8 * tol<T>());
        }
  };
  Tensor4 o = entmax::attention(q, k, v, entmax::Entmax15{}, opt);
  check_means(o);
  check_means(entmax::attention(q, k, v, entmax::Softmax{}, opt));
  check_means(entmax::attention(q, k, v, entmax::Sparsemax{}, opt));
  check_means(entmax::attention(q, k, v, entmax::EntmaxBisect<T>{T(1.25)}, opt));
  check_means(entmax::attention(q, k, v, entmax::EntmaxBisect{T(1.75)}, opt));
  const std::vector<T> beta(static_cast<std::size_t>(B * H * Nq), T(0.5)), gamma(beta.size(), T(1));
  entmax::ASEntmax<T> as(beta.data(), gamma.data(), beta.size());
  check_means(entmax::attention(q, k, v, as, opt));
  check_means(entmax::attention(q, k, v, entmax::ScalableSoftmax<T>(T(0.7)), opt));

  auto grads = entmax::attention_backward(q, k, v, dout, entmax::Entmax15{}, opt);
  REQUIRE(grads.dq.dimension(2) == Nq);
  REQUIRE(grads.dk.dimension(2) == Nk);
  // o_i = mean of v_0..v_i does not depend on v_j for j > i: dv of the last key gets only the
  // last query's dout / Nq; dv_j = Σ_{i >= j} dout_i / (i + 1).
  for (Eigen::Index h = 0; h < H; ++h)
    for (Eigen::Index j = 0; j < Nk; ++j)
      for (Eigen::Index d = 0; d < D; ++d) {
        T e = 0;
        for (Eigen::Index i = j; i < Nq; ++i) e += dout(0, h, i, d) / T(i + 1);
        CHECK(std::fabs(grads.dv(0, h, j, d) - e) <= 8 * tol<T>());
      }
  // Query 0 sees one key only: p = 1 whatever q is, so dq_0 = 0.
  for (Eigen::Index h = 0; h < H; ++h)
    for (Eigen::Index d = 0; d < D; ++d) CHECK(grads.dq(0, h, 0, d) == T(0));
}

TEMPLATE_TEST_CASE("API contract: policies model the Normalizer trait", "[api]", float, double) {
  using T = TestType;
  STATIC_REQUIRE(entmax::is_normalizer_v<entmax::Softmax, T>);
  STATIC_REQUIRE(entmax::is_normalizer_v<entmax::Sparsemax, T>);
  STATIC_REQUIRE(entmax::is_normalizer_v<entmax::Entmax15, T>);
  STATIC_REQUIRE(entmax::is_normalizer_v<entmax::EntmaxBisect<T>, T>);
  STATIC_REQUIRE(entmax::is_normalizer_v<entmax::EntmaxSort<T>, T>);
  STATIC_REQUIRE(!entmax::is_normalizer_v<int, T>);
  STATIC_REQUIRE(entmax::is_row_scaled_v<entmax::ASEntmax<T>>);
  STATIC_REQUIRE(entmax::is_row_scaled_v<entmax::ScalableSoftmax<T>>);
  STATIC_REQUIRE(!entmax::is_row_scaled_v<entmax::Entmax15>);
  STATIC_REQUIRE(entmax::Sparsemax::is_sparse);
  STATIC_REQUIRE(!entmax::Softmax::is_sparse);
  // The Eigen adapter takes any of them.
  Eigen::Matrix<T, 2, 2> z;
  z << T(0.5), T(0), T(2), T(0);
  const Eigen::Matrix<T, 2, 2> p = entmax::normalize_rows(entmax::Sparsemax{}, z);
  CHECK(std::fabs(p(0, 0) - T(0.75)) <= tol<T>());
  CHECK(p(1, 1) == T(0));
  CHECK(ENTMAX_VERSION == ENTMAX_VERSION_MAJOR * 10000 + ENTMAX_VERSION_MINOR * 100 + ENTMAX_VERSION_PATCH);
}
