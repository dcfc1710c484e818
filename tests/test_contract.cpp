// The bad-input contract (NUMERICS.md, "Bad input") across every public entry point: exception
// types and messages naming the function and the value, outputs untouched after a throw, empty
// extents as no-ops, -inf / fully masked rows, NaN / +inf rows independent of SIMD lane order.
#include <entmax/entmax.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Catch::Matchers::Contains;

/// The message of the E thrown by f; records a failure when f throws nothing or another type,
/// or when the message does not start with the qualified name of a function ("entmax::").
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    CHECK_THAT(e.what(), Catch::Matchers::StartsWith("entmax::"));
    return e.what();
  } catch (const std::exception& e) {
    FAIL_CHECK("wrong exception type, message: " << e.what());
    return "<wrong exception type>";
  }
  FAIL_CHECK("no exception thrown");
  return "<no exception>";
}

template <class T>
constexpr T inf_v = std::numeric_limits<T>::infinity();
template <class T>
constexpr T nan_v = std::numeric_limits<T>::quiet_NaN();
template <class T>
constexpr T sentinel_v = T(-12345.5);

template <class T>
bool all_sentinel(const std::vector<T>& v) {
  for (T x : v) {
    if (!(x == sentinel_v<T>)) return false;
  }
  return true;
}

/// One row map with its backward, for the data-value tests.
template <class T>
struct RowMap {
  std::string name;
  std::function<entmax::RowStats<T>(const T*, T*, std::size_t)> forward;
  std::function<void(const T*, const T*, T*, std::size_t)> backward;
};

template <class T>
std::vector<RowMap<T>> row_maps() {
  using entmax::RowStats;
  std::vector<RowMap<T>> maps;
  maps.push_back(
      {"softmax", [](const T* z, T* p, std::size_t n) { return entmax::softmax(z, p, n); },
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::softmax_backward(p, dp, dz, n); }});
  maps.push_back(
      {"sparsemax", [](const T* z, T* p, std::size_t n) { return entmax::sparsemax(z, p, n); },
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::sparsemax_backward(p, dp, dz, n); }});
  maps.push_back(
      {"entmax15", [](const T* z, T* p, std::size_t n) { return entmax::entmax15(z, p, n); },
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::entmax15_backward(p, dp, dz, n); }});
  for (T a : {T(1.25), T(1.5), T(2), T(3)}) {
    maps.push_back({"entmax_bisect(" + std::to_string(a) + ")",
                    [a](const T* z, T* p, std::size_t n) { return entmax::entmax_bisect(z, p, n, a); },
                    [a](const T* p, const T* dp, T* dz, std::size_t n) {
                      entmax::entmax_bisect_backward(p, dp, dz, n, a);
                    }});
  }
  maps.push_back({"entmax_sort(1.75)",
                  [](const T* z, T* p, std::size_t n) { return entmax::entmax_sort(z, p, n, T(1.75)); },
                  [](const T* p, const T* dp, T* dz, std::size_t n) {
                    entmax::entmax_bisect_backward(p, dp, dz, n, T(1.75));
                  }});
  maps.push_back(
      {"asentmax",
       [](const T* z, T* p, std::size_t n) {
         return entmax::asentmax(z, p, n, T(1.5), T(0.5), T(1), T(1), n + 2);
       },
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::entmax15_backward(p, dp, dz, n); }});
  maps.push_back(
      {"scalable_softmax",
       [](const T* z, T* p, std::size_t n) { return entmax::scalable_softmax(z, p, n, T(0.5), n + 2); },
       [](const T* p, const T* dp, T* dz, std::size_t n) { entmax::softmax_backward(p, dp, dz, n); }});
  return maps;
}

// Sizes around every SIMD width (4, 8, 16 lanes) and a few larger ones.
const std::vector<std::size_t> kSizes = {1,  2,  3,  4,  5,  7,  8,  9,  15, 16,
                                         17, 31, 32, 33, 47, 48, 63, 64, 65, 129};

template <class T>
std::vector<T> gaussian_row(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<T> z(n);
  for (T& v : z) v = static_cast<T>(g(rng));
  return z;
}

}  // namespace

// ---------------------------------------------------------------- argument checks

TEMPLATE_TEST_CASE("alpha outside (1, inf) is a domain_error naming the function, output untouched",
                   "[contract]", float, double) {
  using T = TestType;
  const std::vector<T> z = {T(0.5), T(-1), T(2), T(0)};
  const std::size_t n = z.size();
  const std::vector<T> dp = {T(1), T(0), T(-1), T(2)};
  for (T alpha : {T(1), T(0.5), T(0), T(-2), nan_v<T>, inf_v<T>, -inf_v<T>, std::nextafter(T(1), T(0))}) {
    CAPTURE(alpha);
    std::vector<T> out(n, sentinel_v<T>);
    std::string msg;

    msg = message_of<std::domain_error>([&] { entmax::entmax_bisect(z.data(), out.data(), n, alpha); });
    CHECK_THAT(msg, Contains("entmax_bisect") && Contains("alpha must be > 1") && Contains("softmax"));
    CHECK(all_sentinel(out));
    if (alpha == T(1)) CHECK_THAT(msg, Contains("(got 1)"));

    msg = message_of<std::domain_error>([&] { entmax::entmax_sort(z.data(), out.data(), n, alpha); });
    CHECK_THAT(msg, Contains("entmax_sort") && Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));

    msg = message_of<std::domain_error>(
        [&] { entmax::entmax_bisect_backward(z.data(), dp.data(), out.data(), n, alpha); });
    CHECK_THAT(msg, Contains("entmax_bisect_backward") && Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));

    msg = message_of<std::domain_error>(
        [&] { (void)entmax::entmax_alpha_grad(z.data(), dp.data(), n, alpha); });
    CHECK_THAT(msg, Contains("entmax_alpha_grad") && Contains("alpha must be > 1"));

    const entmax::RowStats<T> st{T(2), T(-0.5), 2};
    msg =
        message_of<std::domain_error>([&] { entmax::entmax_from_stats(z.data(), st, out.data(), n, alpha); });
    CHECK_THAT(msg, Contains("entmax_from_stats") && Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));

    msg = message_of<std::domain_error>(
        [&] { entmax::asentmax(z.data(), out.data(), n, alpha, T(1), T(1), T(1), n + 1); });
    CHECK_THAT(msg, Contains("asentmax") && Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));

    msg = message_of<std::domain_error>([&] {
      entmax::asentmax_backward(z.data(), z.data(), dp.data(), out.data(), n, alpha, T(1), T(1), T(1), n + 1);
    });
    CHECK_THAT(msg, Contains("asentmax_backward") && Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));

    msg = message_of<std::domain_error>([&] { entmax::EntmaxBisect<T> policy{alpha}; });
    CHECK_THAT(msg, Contains("EntmaxBisect") && Contains("alpha must be > 1"));
    msg = message_of<std::domain_error>([&] { entmax::EntmaxSort<T> policy{alpha}; });
    CHECK_THAT(msg, Contains("EntmaxSort") && Contains("alpha must be > 1"));

    const std::int64_t target = 1;
    T loss_row = sentinel_v<T>;
    msg = message_of<std::domain_error>(
        [&] { entmax::entmax_bisect_loss(z.data(), 1, n, alpha, &target, &loss_row, out.data()); });
    CHECK_THAT(msg, Contains("alpha must be > 1"));
    CHECK(all_sentinel(out));
    CHECK(loss_row == sentinel_v<T>);
  }
}

TEST_CASE("the alpha message has the documented form", "[contract]") {
  std::vector<double> z = {1, 2}, p(2);
  const std::string msg =
      message_of<std::domain_error>([&] { entmax::entmax_bisect(z.data(), p.data(), z.size(), 1.0); });
  CHECK_THAT(msg, Contains("entmax_bisect: alpha must be > 1 (got 1)"));
  CHECK_THAT(msg, Contains("use softmax for alpha = 1"));
}

TEMPLATE_TEST_CASE("ASEntmax and scalable softmax temperature parameters", "[contract]", float, double) {
  using T = TestType;
  const std::vector<T> z = {T(0.5), T(-1), T(2)};
  const std::vector<T> dp = {T(1), T(0), T(-1)};
  const std::size_t n = z.size();
  std::vector<T> out(n, sentinel_v<T>);
  std::string msg;

  for (T bad : {nan_v<T>, inf_v<T>, -inf_v<T>}) {
    CAPTURE(bad);
    msg = message_of<std::domain_error>(
        [&] { entmax::asentmax(z.data(), out.data(), n, T(1.5), bad, T(1), T(1), 4); });
    CHECK_THAT(msg, Contains("asentmax") && Contains("beta must be finite"));
    msg = message_of<std::domain_error>(
        [&] { entmax::asentmax(z.data(), out.data(), n, T(1.5), T(1), bad, T(1), 4); });
    CHECK_THAT(msg, Contains("asentmax") && Contains("gamma must be finite"));
    msg = message_of<std::domain_error>(
        [&] { entmax::asentmax(z.data(), out.data(), n, T(1.5), T(1), T(1), bad, 4); });
    CHECK_THAT(msg, Contains("asentmax") && Contains("delta must be finite"));
    msg = message_of<std::domain_error>([&] {
      entmax::asentmax_backward(z.data(), z.data(), dp.data(), out.data(), n, T(1.5), bad, T(1), T(1), 4);
    });
    CHECK_THAT(msg, Contains("asentmax_backward") && Contains("beta must be finite"));
    msg = message_of<std::domain_error>([&] { entmax::scalable_softmax(z.data(), out.data(), n, bad, 4); });
    CHECK_THAT(msg, Contains("scalable_softmax") && Contains("s must be finite and > 0"));
    CHECK(all_sentinel(out));
  }
  // A temperature that is not > 0.
  msg = message_of<std::domain_error>(
      [&] { entmax::asentmax(z.data(), out.data(), n, T(1.5), T(1), T(1), T(-5), 3); });
  CHECK_THAT(msg, Contains("asentmax") && Contains("must be finite and > 0") && Contains("delta = -5"));
  msg = message_of<std::domain_error>([&] { entmax::scalable_softmax(z.data(), out.data(), n, T(0), 4); });
  CHECK_THAT(msg, Contains("scalable_softmax") && Contains("(got 0)"));
  msg = message_of<std::domain_error>([&] { entmax::scalable_softmax(z.data(), out.data(), n, T(-1), 4); });
  CHECK_THAT(msg, Contains("(got -1)"));
  // npos counts the visible keys + 1; log(1) = 0.
  for (std::size_t npos : {std::size_t{0}, std::size_t{1}}) {
    msg = message_of<std::invalid_argument>(
        [&] { entmax::asentmax(z.data(), out.data(), n, T(1.5), T(1), T(1), T(1), npos); });
    CHECK_THAT(msg, Contains("asentmax") && Contains("npos must be >= 2") &&
                        Contains("(got " + std::to_string(npos)));
    msg = message_of<std::invalid_argument>(
        [&] { entmax::scalable_softmax(z.data(), out.data(), n, T(1), npos); });
    CHECK_THAT(msg, Contains("scalable_softmax") && Contains("npos must be >= 2"));
  }
  CHECK(all_sentinel(out));

  // Policies check at construction.
  const T beta_bad[2] = {T(1), -T(1)}, gamma_ok[2] = {T(1), T(1)};
  msg = message_of<std::domain_error>([&] { entmax::ASEntmax<T> a(beta_bad, gamma_ok, 2); });
  CHECK_THAT(msg, Contains("ASEntmax") && Contains("beta[1] = -1"));
  msg = message_of<std::domain_error>([&] { entmax::EntmaxAlpha<T> a(T(1)); });
  CHECK_THAT(msg, Contains("EntmaxAlpha") && Contains("alpha must be > 1"));
}

TEMPLATE_TEST_CASE("Eigen adapters: shape mismatches name the function and the shapes, nothing written",
                   "[contract]", float, double) {
  using T = TestType;
  using M = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  const M z = M::Random(3, 5);
  M p = M::Constant(5, 3, sentinel_v<T>);
  std::string msg =
      message_of<std::invalid_argument>([&] { entmax::normalize_rows(entmax::Sparsemax{}, z, p); });
  CHECK_THAT(msg,
             Contains("normalize_rows") && Contains("z") && Contains("p") && Contains("3") && Contains("5"));
  CHECK((p.array() == sentinel_v<T>).all());

  M p_ok(3, 5), dp(3, 4), dz = M::Constant(3, 5, sentinel_v<T>);
  entmax::normalize_rows(entmax::Entmax15{}, z, p_ok);
  msg = message_of<std::invalid_argument>(
      [&] { entmax::normalize_rows_backward(entmax::Entmax15{}, p_ok, dp, dz); });
  CHECK_THAT(msg, Contains("normalize_rows_backward") && Contains("dp"));
  CHECK((dz.array() == sentinel_v<T>).all());

  // Empty extents: no-ops.
  M e0(0, 4), pe0(0, 4), e1(3, 0), pe1(3, 0);
  CHECK_NOTHROW(entmax::normalize_rows(entmax::Sparsemax{}, e0, pe0));
  CHECK_NOTHROW(entmax::normalize_rows(entmax::EntmaxBisect<T>{T(1.3)}, e1, pe1));
  CHECK_NOTHROW(entmax::normalize_rows_backward(entmax::Softmax{}, e1, e1, pe1));
}

TEMPLATE_TEST_CASE("Fenchel-Young losses: targets and shapes", "[contract]", float, double) {
  using T = TestType;
  const std::vector<T> z = {T(1), T(2), T(3), T(0), T(-1), T(4)};
  std::vector<T> row_losses(2, sentinel_v<T>), dz(6, sentinel_v<T>);
  const std::int64_t bad_targets[2] = {0, 3};
  std::string msg = message_of<std::invalid_argument>(
      [&] { entmax::sparsemax_loss(z.data(), 2, 3, bad_targets, row_losses.data(), dz.data()); });
  CHECK_THAT(msg, Contains("targets[1] = 3"));
  CHECK(all_sentinel(row_losses));
  CHECK(all_sentinel(dz));
  const std::int64_t neg_targets[2] = {-2, 0};
  msg = message_of<std::invalid_argument>(
      [&] { entmax::entmax15_loss(z.data(), 2, 3, neg_targets, row_losses.data(), dz.data()); });
  CHECK_THAT(msg, Contains("targets[0] = -2"));
  CHECK(all_sentinel(dz));
  // Empty extents.
  CHECK(entmax::softmax_loss<T>(nullptr, 0, 3, nullptr, nullptr, nullptr) == T(0));
}

// ---------------------------------------------------------------- attention

namespace {
template <class T>
using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;

template <class T>
Tensor4<T> filled(Eigen::Index b, Eigen::Index h, Eigen::Index n, Eigen::Index d, unsigned seed) {
  Tensor4<T> t(b, h, n, d);
  std::mt19937 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<T>(g(rng));
  return t;
}
}  // namespace

TEMPLATE_TEST_CASE("attention: shape and option errors name the function, tensors and shapes", "[contract]",
                   float, double) {
  using T = TestType;
  const auto q = filled<T>(2, 4, 3, 8, 1);
  const auto k = filled<T>(2, 4, 5, 8, 2);
  const auto v = filled<T>(2, 4, 5, 8, 3);
  const auto k_bad_d = filled<T>(2, 4, 5, 7, 4);
  const auto k_bad_b = filled<T>(3, 4, 5, 8, 5);
  const auto k_bad_h = filled<T>(2, 3, 5, 8, 6);
  const auto v_bad_n = filled<T>(2, 4, 6, 8, 7);
  entmax::AttentionOptions<T> opt;
  std::string msg;

  msg = message_of<std::invalid_argument>(
      [&] { (void)entmax::attention(q, k_bad_d, v, entmax::Softmax{}, opt); });
  CHECK_THAT(
      msg, Contains("entmax::attention") && Contains("k has shape [2, 4, 5, 7]") && Contains("[2, 4, 3, 8]"));
  msg = message_of<std::invalid_argument>(
      [&] { (void)entmax::attention(q, k_bad_b, v, entmax::Sparsemax{}, opt); });
  CHECK_THAT(msg, Contains("entmax::attention") && Contains("[3, 4, 5, 8]"));
  msg = message_of<std::invalid_argument>(
      [&] { (void)entmax::attention(q, k_bad_h, k_bad_h, entmax::Entmax15{}, opt); });
  CHECK_THAT(msg, Contains("kv_heads"));
  msg = message_of<std::invalid_argument>(
      [&] { (void)entmax::attention(q, k, v_bad_n, entmax::Softmax{}, opt); });
  CHECK_THAT(msg, Contains("v has shape [2, 4, 6, 8]") && Contains("k has shape [2, 4, 5, 8]"));

  const auto dout_bad = filled<T>(2, 4, 3, 7, 8);
  msg = message_of<std::invalid_argument>(
      [&] { (void)entmax::attention_backward(q, k, v, dout_bad, entmax::Softmax{}, opt); });
  CHECK_THAT(msg, Contains("entmax::attention_backward") && Contains("dout has shape [2, 4, 3, 7]"));

  for (T s : {T(0), T(-1), nan_v<T>, inf_v<T>}) {
    CAPTURE(s);
    entmax::AttentionOptions<T> o;
    o.scale = s;
    msg = message_of<std::domain_error>([&] { (void)entmax::attention(q, k, v, entmax::Entmax15{}, o); });
    CHECK_THAT(msg, Contains("entmax::attention") && Contains("scale must be finite and > 0"));
  }
  {
    entmax::AttentionOptions<T> o;
    o.key_lengths = {5, 6};
    msg = message_of<std::invalid_argument>([&] { (void)entmax::attention(q, k, v, entmax::Softmax{}, o); });
    CHECK_THAT(msg, Contains("key_lengths[1] = 6"));
    o.key_lengths = {5};
    msg = message_of<std::invalid_argument>([&] { (void)entmax::attention(q, k, v, entmax::Softmax{}, o); });
    CHECK_THAT(msg, Contains("key_lengths has 1 entries"));
  }
  {
    Eigen::Tensor<bool, 4, Eigen::RowMajor> mask(1, 1, 3, 4);
    mask.setConstant(true);
    entmax::AttentionOptions<T> o;
    o.mask = entmax::view(mask);
    msg =
        message_of<std::invalid_argument>([&] { (void)entmax::attention(q, k, v, entmax::Sparsemax{}, o); });
    CHECK_THAT(msg, Contains("mask has shape [1, 1, 3, 4]"));
  }
  {
    entmax::AttentionOptions<T> o;
    o.alibi_slopes = {T(1), T(1), nan_v<T>, T(1)};
    msg = message_of<std::domain_error>([&] { (void)entmax::attention(q, k, v, entmax::Softmax{}, o); });
    CHECK_THAT(msg, Contains("alibi slope"));
  }
}

TEMPLATE_TEST_CASE("attention: empty extents", "[contract]", float, double) {
  using T = TestType;
  entmax::AttentionOptions<T> opt;
  opt.scale = T(0.5);
  // No batch, no heads, no queries: empty outputs.
  for (auto dims : {std::array<Eigen::Index, 3>{0, 2, 3}, std::array<Eigen::Index, 3>{2, 0, 3},
                    std::array<Eigen::Index, 3>{2, 2, 0}}) {
    const auto q = filled<T>(dims[0], dims[1], dims[2], 4, 1);
    const auto k = filled<T>(dims[0], dims[1], 5, 4, 2);
    const auto o = entmax::attention(q, k, k, entmax::Entmax15{}, opt);
    CHECK(o.size() == 0);
    const auto g = entmax::attention_backward(q, k, k, q, entmax::Entmax15{}, opt);
    CHECK(g.dq.size() == 0);
    for (Eigen::Index i = 0; i < g.dk.size(); ++i) CHECK(g.dk.data()[i] == T(0));
  }
  // No keys: zero output rows and zero gradients.
  const auto q = filled<T>(2, 2, 3, 4, 3);
  const Tensor4<T> k(2, 2, 0, 4);
  const auto o = entmax::attention(q, k, k, entmax::Sparsemax{}, opt);
  REQUIRE(o.dimension(2) == 3);
  for (Eigen::Index i = 0; i < o.size(); ++i) CHECK(o.data()[i] == T(0));
  const auto g = entmax::attention_backward(q, k, k, q, entmax::Sparsemax{}, opt);
  for (Eigen::Index i = 0; i < g.dq.size(); ++i) CHECK(g.dq.data()[i] == T(0));
  // Head dim 0: empty rows, nothing to read (scale given explicitly).
  const auto q0 = filled<T>(1, 1, 3, 0, 4);
  const auto k0 = filled<T>(1, 1, 2, 0, 5);
  CHECK(entmax::attention(q0, k0, k0, entmax::Softmax{}, opt).size() == 0);
}

// ---------------------------------------------------------------- data values

TEMPLATE_TEST_CASE("empty rows are no-ops (null pointers allowed)", "[contract]", float, double) {
  using T = TestType;
  for (const auto& m : row_maps<T>()) {
    CAPTURE(m.name);
    const entmax::RowStats<T> st = m.forward(nullptr, nullptr, 0);
    CHECK(st.support == 0);
    m.backward(nullptr, nullptr, nullptr, 0);
  }
  CHECK(entmax::entmax_alpha_grad<T>(nullptr, nullptr, 0, T(1.5)) == T(0));
  const auto g =
      entmax::asentmax_backward<T>(nullptr, nullptr, nullptr, nullptr, 0, T(1.5), T(1), T(1), T(1), 2);
  CHECK(g.dbeta == T(0));
  CHECK(g.dgamma == T(0));
}

TEMPLATE_TEST_CASE("NaN or +inf anywhere in a row gives a NaN row, whatever the SIMD lane", "[contract]",
                   float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed());
  INFO("seed " << Catch::rngSeed());
  for (const auto& m : row_maps<T>()) {
    for (std::size_t n : kSizes) {
      for (T bad : {nan_v<T>, inf_v<T>}) {
        // every position for short rows; first, middle and last lanes for longer ones
        std::vector<std::size_t> positions;
        if (n <= 33) {
          for (std::size_t i = 0; i < n; ++i) positions.push_back(i);
        } else {
          for (std::size_t i :
               {std::size_t{0}, std::size_t{1}, n / 2, n - 17, n - 16, n - 9, n - 8, n - 2, n - 1}) {
            positions.push_back(i);
          }
        }
        for (std::size_t pos : positions) {
          std::vector<T> z = gaussian_row<T>(n, rng);
          z[pos] = bad;
          if (n > 2) z[(pos + 1) % n] = -inf_v<T>;  // a masked neighbour does not hide it
          std::vector<T> p(n, sentinel_v<T>);
          const entmax::RowStats<T> st = m.forward(z.data(), p.data(), n);
          bool ok = true;
          for (std::size_t i = 0; i < n; ++i) {
            if (z[i] == -inf_v<T>) {
              ok = ok && (p[i] == T(0) || std::isnan(p[i]));
            } else {
              ok = ok && std::isnan(p[i]);
            }
          }
          INFO(m.name << " n=" << n << " bad=" << bad << " at " << pos);
          CHECK(ok);
          CHECK(st.support == 0);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("-inf scores get exact zeros and zero gradients; fully masked rows give zeros",
                   "[contract]", float, double) {
  using T = TestType;
  std::mt19937_64 rng(Catch::rngSeed());
  INFO("seed " << Catch::rngSeed());
  for (const auto& m : row_maps<T>()) {
    for (std::size_t n : kSizes) {
      INFO(m.name << " n=" << n);
      // All -inf but one: that one gets 1.
      for (std::size_t keep : {std::size_t{0}, n / 2, n - 1}) {
        std::vector<T> z(n, -inf_v<T>);
        z[keep] = T(3.25);
        std::vector<T> p(n, sentinel_v<T>);
        const entmax::RowStats<T> st = m.forward(z.data(), p.data(), n);
        for (std::size_t i = 0; i < n; ++i) CHECK(p[i] == (i == keep ? T(1) : T(0)));
        CHECK(st.support == 1);
        std::vector<T> dp = gaussian_row<T>(n, rng), dz(n, sentinel_v<T>);
        m.backward(p.data(), dp.data(), dz.data(), n);
        for (std::size_t i = 0; i < n; ++i) CHECK(dz[i] == T(0));  // one-hot: the Jacobian is 0
      }
      // Fully masked.
      std::vector<T> z(n, -inf_v<T>), p(n, sentinel_v<T>);
      const entmax::RowStats<T> st = m.forward(z.data(), p.data(), n);
      for (std::size_t i = 0; i < n; ++i) CHECK(p[i] == T(0));
      CHECK(st.support == 0);
      std::vector<T> dp = gaussian_row<T>(n, rng), dz(n, sentinel_v<T>);
      m.backward(p.data(), dp.data(), dz.data(), n);
      for (std::size_t i = 0; i < n; ++i) CHECK(dz[i] == T(0));
      // Random masks: masked entries exactly 0 with zero gradient, the rest finite.
      std::vector<T> zm = gaussian_row<T>(n, rng);
      for (std::size_t i = 0; i < n; ++i) {
        if (rng() % 3 == 0) zm[i] = -inf_v<T>;
      }
      zm[rng() % n] = T(0.5);
      std::vector<T> pm(n, sentinel_v<T>), dzm(n, sentinel_v<T>);
      m.forward(zm.data(), pm.data(), n);
      m.backward(pm.data(), dp.data(), dzm.data(), n);
      for (std::size_t i = 0; i < n; ++i) {
        CHECK(std::isfinite(pm[i]));
        CHECK(std::isfinite(dzm[i]));
        if (zm[i] == -inf_v<T>) {
          CHECK(pm[i] == T(0));
          CHECK(dzm[i] == T(0));
        }
      }
    }
  }
  // The alpha-gradient of a fully masked row is 0, not NaN.
  std::vector<T> p0(9, T(0)), dp0(9, T(1));
  CHECK(entmax::entmax_alpha_grad(p0.data(), dp0.data(), 9, T(1.5)) == T(0));
  CHECK(entmax::entmax_alpha_grad(p0.data(), dp0.data(), 9, T(3)) == T(0));
}

TEMPLATE_TEST_CASE("huge finite scores never turn a valid row into NaN or zeros", "[contract]", float,
                   double) {
  using T = TestType;
  const T big = std::numeric_limits<T>::max();
  std::vector<RowMap<T>> maps = row_maps<T>();
  // Temperatures > 1: the scaled row must not overflow into +inf (NaN row) or -inf (empty row).
  maps.push_back(
      {"scalable_softmax(s=4, npos=1000)",
       [](const T* z, T* p, std::size_t n) { return entmax::scalable_softmax(z, p, n, T(4), 1000); },
       nullptr});
  maps.push_back({"asentmax(beta=3, npos=1000)",
                  [](const T* z, T* p, std::size_t n) {
                    return entmax::asentmax(z, p, n, T(1.25), T(3), T(1), T(1), 1000);
                  },
                  nullptr});
  for (const auto& m : maps) {
    INFO(m.name);
    for (const std::vector<T>& z : std::vector<std::vector<T>>{{big, -big, T(0)},
                                                               {big, big, -big},
                                                               {-big, -big, -big},
                                                               {big / 2, big / 4, big / 8, T(1)},
                                                               {T(1e30), T(-1e30), T(1e30), T(0)},
                                                               {T(-1e30), T(-1e30) * T(1.0000001)}}) {
      CAPTURE(z);
      std::vector<T> p(z.size(), sentinel_v<T>);
      m.forward(z.data(), p.data(), z.size());
      double sum = 0;
      for (T v : p) {
        CHECK(std::isfinite(v));
        sum += static_cast<double>(v);
      }
      CHECK(sum == Approx(1.0).margin(1e-6));
    }
  }
}

TEMPLATE_TEST_CASE("a tie at the largest finite score after masked entries (fuzz finding)", "[contract]",
                   float, double) {
  // Reduced from a fuzz_sparsemax input: 80 scores, zeros, a few -inf early in the row and two
  // copies of the largest finite value in a later SIMD block. Expected: 1/2 on each copy.
  using T = TestType;
  const std::size_t n = 80;
  for (const auto& m : row_maps<T>()) {
    if (m.name == "asentmax" || m.name == "scalable_softmax") continue;  // they scale the row first
    for (T big : {std::numeric_limits<T>::max(), std::numeric_limits<T>::max() / 2}) {
      std::vector<T> z(n, T(0)), p(n, sentinel_v<T>);
      for (int i : {8, 9, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 24, 25})
        z[static_cast<std::size_t>(i)] = -inf_v<T>;
      z[64] = z[65] = big;
      const entmax::RowStats<T> st = m.forward(z.data(), p.data(), n);
      INFO(m.name << " big=" << big);
      const T half_ulp = std::nextafter(T(0.5), T(1)) - T(0.5);
      CHECK(std::fabs(p[64] - T(0.5)) <= half_ulp);  // ties: equal mass within 1 ulp
      CHECK(std::fabs(p[65] - T(0.5)) <= half_ulp);
      CHECK(st.support == 2);
      double sum = 0;
      for (T v : p) sum += static_cast<double>(v);
      CHECK(std::fabs(sum - 1.0) <= 4.0 * std::numeric_limits<T>::epsilon());
    }
  }
}
