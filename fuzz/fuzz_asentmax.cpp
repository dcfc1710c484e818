// libFuzzer harness: entmax::asentmax / asentmax_backward (p = α-entmax(s·z), s = δ + β log(npos)^γ),
// float and double. Invalid parameters must throw (domain_error / invalid_argument) before any
// write; valid ones must give a simplex row that agrees with a long-double reference of the
// scaled row, and gradients (dz, dβ, dγ) that agree with the long-double formulas.
#include <entmax/asentmax.hpp>

#include <stdexcept>

#include "row_harness.hpp"

namespace {

using entmax_fuzz::LD;

template <class T>
void run(entmax_fuzz::Reader& in, std::uint64_t seed, std::uint8_t flags) {
  const bool raw = flags & 2, specials = flags & 4;
  const int exponent = static_cast<int>(in.u8()) - 140;
  const T alpha = static_cast<T>(entmax_fuzz::decode_alpha(in.u16()));
  // β, γ, δ: mostly the authors' ranges, sometimes anything (including invalid values).
  const std::uint8_t pick = in.u8();
  T beta, gamma, delta;
  if (pick < 200) {
    beta = static_cast<T>(in.u8() / 32.0);           // [0, 8)
    gamma = static_cast<T>((in.u8() - 128) / 32.0);  // [-4, 4)
    delta = static_cast<T>(in.u8() < 200 ? 1.0 : 0.0);
  } else {
    beta = in.raw<T>();
    gamma = in.raw<T>();
    delta = in.raw<T>();
  }
  const std::size_t npos = in.u16();
  const std::vector<T> z = entmax_fuzz::decode_row<T>(in, raw, specials, exponent, 2048);
  const std::size_t n = z.size();
  const T inf = std::numeric_limits<T>::infinity();
  char buf[200];
  std::snprintf(buf, sizeof buf, "asentmax<%s> n=%zu alpha=%.9g beta=%.9g gamma=%.9g delta=%.9g npos=%zu z=",
                sizeof(T) == 4 ? "float" : "double", n, double(alpha), double(beta), double(gamma),
                double(delta), npos);
  const std::string ctx = buf + entmax_fuzz::show(z);

  // Expected validity of the parameters, from the documented rules, in long double.
  const bool params_finite = std::isfinite(beta) && std::isfinite(gamma) && std::isfinite(delta);
  LD s_exact = 0;
  if (params_finite && npos >= 2) {
    s_exact = static_cast<LD>(delta) +
              static_cast<LD>(beta) * std::pow(std::log(static_cast<LD>(npos)), static_cast<LD>(gamma));
  }
  const T s = static_cast<T>(s_exact);
  std::vector<T> p(n, T(12345));
  try {
    entmax::asentmax(z.data(), p.data(), n, alpha, beta, gamma, delta, npos);
  } catch (const std::domain_error&) {
    for (T v : p) ENTMAX_FUZZ_CHECK(v == T(12345), "output written before a domain_error");
    ENTMAX_FUZZ_CHECK(!params_finite || !(s > 0 && std::isfinite(s)) ||
                          std::fabs(s_exact) > std::numeric_limits<T>::max() / 4 ||
                          s_exact < std::numeric_limits<T>::min() * 4,
                      "domain_error for valid parameters (s=%Lg)", s_exact);
    return;
  } catch (const std::invalid_argument&) {
    ENTMAX_FUZZ_CHECK(npos < 2, "invalid_argument with npos=%zu", npos);
    for (T v : p) ENTMAX_FUZZ_CHECK(v == T(12345), "output written before an invalid_argument");
    return;
  }
  ENTMAX_FUZZ_CHECK(params_finite && npos >= 2 && s_exact > 0, "no exception for invalid parameters (s=%Lg)",
                    s_exact);
  if (n == 0) return;

  bool bad = false, any_finite = false;
  for (T v : z) {
    bad = bad || entmax_fuzz::is_bad_score(v);
    any_finite = any_finite || std::isfinite(v);
  }
  if (bad) {
    for (std::size_t i = 0; i < n; ++i) {
      if (z[i] != -inf) ENTMAX_FUZZ_CHECK(std::isnan(p[i]), "p[%zu]=%g, expected NaN", i, double(p[i]));
    }
    return;
  }
  if (!any_finite) {
    for (std::size_t i = 0; i < n; ++i)
      ENTMAX_FUZZ_CHECK(p[i] == 0, "fully masked row: p[%zu]=%g", i, double(p[i]));
    return;
  }
  // A finite row is a valid row, however large s·z is: on the simplex, masked entries 0.
  const LD eps = std::numeric_limits<T>::epsilon();
  LD sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ENTMAX_FUZZ_CHECK(p[i] >= 0 && p[i] <= 1, "p[%zu]=%g not in [0,1] (s=%g)", i, double(p[i]), double(s));
    if (z[i] == -inf) ENTMAX_FUZZ_CHECK(p[i] == 0, "masked p[%zu]=%g", i, double(p[i]));
    sum += p[i];
  }
  // Σp: the row kernels' bound, with slack for the α-near-1 limit of the entmax_bisect path.
  const LD sum_tol = (sizeof(T) == 4 ? 4 : 16) * eps;
  ENTMAX_FUZZ_CHECK(std::fabs(sum - 1) <= sum_tol, "sum(p)-1 = %Lg (s=%g)", sum - 1, double(s));
  if (n <= 256 && static_cast<LD>(alpha) <= entmax_fuzz::max_reference_alpha) {
    // Shifted by the row max before scaling (the map is shift-invariant): s·z itself would lose
    // the scores' differences to rounding once |s·z| is large (z ≈ 1.6e11, s ≈ 12 needs more
    // than long double's 64 bits), making the reference, not the kernel, the inexact side.
    LD zmax = -std::numeric_limits<LD>::infinity();
    for (T v : z) zmax = std::max(zmax, static_cast<LD>(v));
    std::vector<LD> zs(n);
    for (std::size_t i = 0; i < n; ++i) zs[i] = static_cast<LD>(s) * (static_cast<LD>(z[i]) - zmax);
    const std::vector<LD> ref = entmax_fuzz::ref_entmax(zs, static_cast<LD>(alpha));
    // The kernel rounds s·z to T: an extra ε/2 relative on each scaled score.
    const LD tol = 2 * entmax_fuzz::row_ref_tolerance<T>(ref, static_cast<LD>(alpha), false);
    for (std::size_t i = 0; i < n; ++i) {
      ENTMAX_FUZZ_CHECK(std::fabs(p[i] - ref[i]) <= tol, "p[%zu]=%.9g, reference %.12Lg (tol %Lg)", i,
                        double(p[i]), ref[i], tol);
    }
  }

  // Backward.
  entmax_fuzz::Rng rng{seed};
  std::vector<T> dp(n), dz(n, T(12345));
  for (auto& v : dp) v = static_cast<T>(rng.symmetric());
  const auto g =
      entmax::asentmax_backward(z.data(), p.data(), dp.data(), dz.data(), n, alpha, beta, gamma, delta, npos);
  std::vector<LD> pl(p.begin(), p.end()), dpl(dp.begin(), dp.end()), u;
  const std::vector<LD> jt = entmax_fuzz::ref_backward(pl, dpl, static_cast<LD>(alpha), &u);
  // dz = s · Jᵀdp: the row kernels' bound (16ε of each entry's terms, 4ε of the row's) plus the
  // rounding of the product by s.
  const entmax_fuzz::BackwardScale scale = entmax_fuzz::backward_scale(u, dpl);
  const LD sl = static_cast<LD>(s), tiny = 4 * static_cast<LD>(std::numeric_limits<T>::denorm_min());
  LD zmax = 0;
  for (T v : z) {
    if (v != -inf) zmax = std::max(zmax, std::fabs(static_cast<LD>(v)));
  }
  LD ds = 0, ds_bound = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == 0) ENTMAX_FUZZ_CHECK(dz[i] == 0, "dz[%zu]=%g where p=0", i, double(dz[i]));
    const LD err = 16 * eps * scale.term[i] + 4 * eps * scale.row + eps * std::fabs(jt[i]);
    const LD ref = sl * jt[i];
    if (std::fabs(ref) < std::numeric_limits<T>::max() / 4) {
      ENTMAX_FUZZ_CHECK(std::fabs(dz[i] - ref) <= sl * err + tiny,
                        "dz[%zu]=%.9g, reference %.12Lg (bound %Lg)", i, double(dz[i]), ref, sl * err + tiny);
    }
    if (p[i] > 0) {
      // ds = Σ Jᵀdp · z: the error of each Jᵀdp entry times |z| (the kernel may shift z by any
      // finite score, hence + zmax), plus the rounding of the sum and of subnormal products.
      ds += jt[i] * static_cast<LD>(z[i]);
      ds_bound += 2 * err * (std::fabs(static_cast<LD>(z[i])) + zmax) +
                  16 * eps * std::fabs(jt[i] * static_cast<LD>(z[i])) + tiny;
    }
  }
  // Compared where the reference is representable (an overflowing ds is a documented limit).
  const LD tmax = std::numeric_limits<T>::max();
  if (std::fabs(ds) < tmax / 4 && ds_bound < tmax / 4) {
    ENTMAX_FUZZ_CHECK(std::fabs(g.ds - ds) <= ds_bound, "ds=%.9g, reference %.12Lg (bound %Lg)", double(g.ds),
                      ds, ds_bound);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  entmax_fuzz::Reader in(data, size);
  const std::uint8_t flags = in.u8();
  const std::uint64_t seed = entmax_fuzz::hash_bytes(data, size);
  if (flags & 1) {
    run<double>(in, seed, flags);
  } else {
    run<float>(in, seed, flags);
  }
  return 0;
}
