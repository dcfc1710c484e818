// The row-kernel harness: decodes a row, runs forward (out of place, in place, reversed,
// shifted) and backward, and checks the NUMERICS.md invariants against long-double references.
// A family F provides: name, has_alpha, forward(z, p, n, alpha) -> RowStats<T>,
// backward(p, dp, dz, n, alpha), alpha_grad (or not) and ref_alpha (1 for softmax).
#pragma once

#include "fuzz_common.hpp"

#include <entmax/row_stats.hpp>

#include <cstring>

namespace entmax_fuzz {

/// α from two input bytes: a few common values, else α − 1 log-uniform in [1e-3, 10].
inline double decode_alpha(std::uint16_t code) {
  static const double common[] = {1.5, 2.0, 1.25, 3.0, 1.1, 1.01, 1.75, 4.0};
  if (code < 64) return common[code % 8];
  return 1.0 + std::pow(10.0, -3.0 + 4.0 * (code / 65535.0));
}

template <class T>
bool same_bits(T a, T b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

template <class F, class T>
void run_row_case(Reader& in, std::uint64_t seed, std::uint8_t flags) {
  const bool raw = flags & 2, specials = flags & 4, const_dp = flags & 16;
  const int exponent = static_cast<int>(in.u8()) - 140;
  const std::uint16_t alpha_code = in.u16();  // read by every family: one corpus fits all
  const T alpha = F::has_alpha ? static_cast<T>(decode_alpha(alpha_code)) : T(F::fixed_alpha);
  const std::vector<T> z = decode_row<T>(in, raw, specials, exponent, 4096);
  const std::size_t n = z.size();
  const LD eps = std::numeric_limits<T>::epsilon();
  const T inf = std::numeric_limits<T>::infinity();
  char ctxbuf[160];
  std::snprintf(ctxbuf, sizeof ctxbuf, "%s<%s> n=%zu alpha=%.9g raw=%d exp=%d z=", F::name,
                sizeof(T) == 4 ? "float" : "double", n, static_cast<double>(alpha), raw, exponent);
  const std::string ctx = ctxbuf + show(z);

  bool bad = false, any_finite = false;
  T zmax = -inf;
  for (T v : z) {
    bad = bad || is_bad_score(v);
    any_finite = any_finite || std::isfinite(v);
    if (!std::isnan(v)) zmax = std::max(zmax, v);
  }

  // ---- forward, out of place; the output starts as a sentinel that must be overwritten.
  std::vector<T> p(n, T(12345));
  const entmax::RowStats<T> st = F::forward(z.data(), p.data(), n, alpha);
  if (n == 0) return;

  if (bad) {
    for (std::size_t i = 0; i < n; ++i) {
      if (z[i] == -inf) {
        ENTMAX_FUZZ_CHECK(p[i] == 0 || std::isnan(p[i]), "masked p[%zu]=%g in a NaN row", i, double(p[i]));
      } else {
        ENTMAX_FUZZ_CHECK(std::isnan(p[i]), "p[%zu]=%g, expected NaN (NaN/+inf in the row)", i, double(p[i]));
      }
    }
    ENTMAX_FUZZ_CHECK(st.support == 0, "support=%zu for a NaN row", st.support);
  } else if (!any_finite) {
    for (std::size_t i = 0; i < n; ++i)
      ENTMAX_FUZZ_CHECK(p[i] == 0, "fully masked row: p[%zu]=%g", i, double(p[i]));
    ENTMAX_FUZZ_CHECK(st.support == 0, "fully masked row: support=%zu", st.support);
  } else {
    ENTMAX_FUZZ_CHECK(st.max == zmax, "stats.max=%g, row max=%g", double(st.max), double(zmax));
    LD sum = 0;
    std::size_t nonzero = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ENTMAX_FUZZ_CHECK(p[i] >= 0 && p[i] <= 1, "p[%zu]=%g not in [0,1]", i, double(p[i]));
      if (z[i] == -inf) ENTMAX_FUZZ_CHECK(p[i] == 0, "masked p[%zu]=%g", i, double(p[i]));
      sum += p[i];
      nonzero += p[i] != 0;
    }
    const LD sum_tol = (sizeof(T) == 4 ? 4 : 16) * eps;
    ENTMAX_FUZZ_CHECK(std::fabs(sum - 1) <= sum_tol, "sum(p)-1 = %Lg (bound %Lg)", sum - 1, sum_tol);
    ENTMAX_FUZZ_CHECK(st.support == nonzero && nonzero >= 1, "support=%zu, non-zeros=%zu", st.support,
                      nonzero);

    // Ties: equal scores get equal mass (1 ulp).
    std::vector<std::size_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return z[a] < z[b]; });
    for (std::size_t k = 1; k < n; ++k) {
      const std::size_t a = idx[k - 1], b = idx[k];
      if (z[a] == z[b]) {
        const T hi = std::max(p[a], p[b]);
        ENTMAX_FUZZ_CHECK(std::fabs(p[a] - p[b]) <= std::nextafter(hi, T(2)) - hi,
                          "tie z[%zu]=z[%zu]: p %.9g vs %.9g", a, b, double(p[a]), double(p[b]));
      }
    }

    // Long-double reference.
    const LD ralpha = F::has_alpha || F::fixed_alpha != 1 ? static_cast<LD>(alpha) : LD(1);
    const std::size_t ref_limit = (ralpha == 1 || ralpha == 2) ? 4096 : 256;
    if (n <= ref_limit && ralpha <= max_reference_alpha) {
      std::vector<LD> zl(z.begin(), z.end());
      const std::vector<LD> ref = ralpha == 1 ? ref_softmax(zl) : ref_entmax(zl, ralpha);
      const LD tol = row_ref_tolerance<T>(ref, ralpha, ralpha == 1);
      for (std::size_t i = 0; i < n; ++i) {
        ENTMAX_FUZZ_CHECK(std::fabs(p[i] - ref[i]) <= tol, "p[%zu]=%.9g, reference %.12Lg (tol %Lg)", i,
                          double(p[i]), ref[i], tol);
      }
    }
  }

  // ---- in place: bitwise equal to out of place.
  {
    std::vector<T> q = z;
    F::forward(q.data(), q.data(), n, alpha);
    for (std::size_t i = 0; i < n; ++i) {
      ENTMAX_FUZZ_CHECK(same_bits(q[i], p[i]) || (std::isnan(q[i]) && std::isnan(p[i])),
                        "in-place p[%zu]=%.9g vs %.9g", i, double(q[i]), double(p[i]));
    }
  }
  // ---- reversed row: permutation equivariance (4 ulp of 1).
  {
    std::vector<T> zr(z.rbegin(), z.rend()), pr(n);
    F::forward(zr.data(), pr.data(), n, alpha);
    for (std::size_t i = 0; i < n; ++i) {
      const T a = p[i], b = pr[n - 1 - i];
      ENTMAX_FUZZ_CHECK((std::isnan(a) && std::isnan(b)) || std::fabs(a - b) <= 4 * eps,
                        "reversed: p[%zu]=%.9g vs %.9g", i, double(a), double(b));
    }
  }
  // ---- shift invariance, bitwise, when every value and its shift are exact (byte codes only).
  if (!raw && !bad && any_finite) {
    bool exact = true;
    for (T v : z)
      exact = exact && (v == -inf ||
                        (v != std::numeric_limits<T>::max() && v != std::numeric_limits<T>::denorm_min()));
    const T c = static_cast<T>(std::ldexp(64.0, exponent));
    if (exact && std::isfinite(c) && c != 0) {
      std::vector<T> zs(z), ps(n);
      for (T& v : zs) v += c;  // −inf stays −inf; others stay exact (at most 9 significant bits)
      F::forward(zs.data(), ps.data(), n, alpha);
      for (std::size_t i = 0; i < n; ++i) {
        ENTMAX_FUZZ_CHECK(same_bits(ps[i], p[i]), "shift by %g: p[%zu]=%.9g vs %.9g", double(c), i,
                          double(ps[i]), double(p[i]));
      }
    }
  }

  // ---- backward on the forward's p (skip NaN rows: unspecified gradient).
  if (bad) return;
  Rng rng{seed};
  const double dp_scale = std::ldexp(1.0, static_cast<int>(rng.next() % 41) - 20);
  const double c = rng.symmetric() * dp_scale;
  std::vector<T> dp(n), dz(n, T(12345));
  for (auto& v : dp) v = static_cast<T>(const_dp ? c : rng.symmetric() * dp_scale);
  F::backward(p.data(), dp.data(), dz.data(), n, alpha);
  const LD balpha = F::has_alpha ? static_cast<LD>(alpha) : LD(F::fixed_alpha);
  std::vector<LD> pl(p.begin(), p.end()), dpl(dp.begin(), dp.end()), u;
  const std::vector<LD> dzr = ref_backward(pl, dpl, balpha, &u);
  LD su = 0, sud = 0;
  for (std::size_t i = 0; i < n; ++i) su += u[i], sud += u[i] * dpl[i];
  const LD k = su > 0 ? sud / su : 0;
  // Entries far below the row's scale (p tiny, where T's pow loses ~|log p| ε relative) are held
  // to 4ε of it.
  const BackwardScale scale = backward_scale(u, dpl);
  LD sum_dz = 0, sum_scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == 0) ENTMAX_FUZZ_CHECK(dz[i] == 0, "dz[%zu]=%g where p=0", i, double(dz[i]));
    // relative to the terms' magnitude, plus a floor for subnormal results
    const LD tiny = 4 * static_cast<LD>(std::numeric_limits<T>::denorm_min());
    const LD bound = 16 * eps * scale.term[i] + 4 * eps * scale.row + tiny;
    const bool representable = std::fabs(dzr[i]) < std::numeric_limits<T>::max() / 2;
    if (representable) {
      ENTMAX_FUZZ_CHECK(std::isfinite(dz[i]), "dz[%zu]=%g not finite (reference %Lg)", i, double(dz[i]),
                        dzr[i]);
      ENTMAX_FUZZ_CHECK(std::fabs(dz[i] - dzr[i]) <= bound, "dz[%zu]=%.9g, reference %.12Lg (bound %Lg)", i,
                        double(dz[i]), dzr[i], bound);
    }
    sum_dz += dz[i];
    sum_scale += u[i] * (std::fabs(dpl[i]) + std::fabs(k)) + tiny / (16 * eps);
  }
  if (std::isfinite(sum_dz)) {
    ENTMAX_FUZZ_CHECK(std::fabs(sum_dz) <= 16 * eps * sum_scale, "sum(dz)=%Lg (bound %Lg)", sum_dz,
                      16 * eps * sum_scale);
  }
  // dp and dz may alias.
  {
    std::vector<T> g = dp;
    F::backward(p.data(), g.data(), g.data(), n, alpha);
    for (std::size_t i = 0; i < n; ++i) {
      ENTMAX_FUZZ_CHECK(same_bits(g[i], dz[i]) || (std::isnan(g[i]) && std::isnan(dz[i])),
                        "in-place dz[%zu]=%.9g vs %.9g", i, double(g[i]), double(dz[i]));
    }
  }
  if constexpr (F::has_alpha_grad) {
    const T ga = F::alpha_grad(p.data(), dp.data(), n, alpha);
    LD scale = 0;
    const LD gr = ref_alpha_grad(pl, dpl, balpha, &scale);
    if (!any_finite) {
      ENTMAX_FUZZ_CHECK(ga == 0, "alpha_grad=%g on a fully masked row", double(ga));
    } else if (std::fabs(gr) < std::numeric_limits<T>::max() / 2 &&
               scale < std::numeric_limits<T>::max() / 64) {
      ENTMAX_FUZZ_CHECK(std::isfinite(ga), "alpha_grad=%g not finite (reference %Lg)", double(ga), gr);
      ENTMAX_FUZZ_CHECK(std::fabs(ga - gr) <= 64 * eps * scale,
                        "alpha_grad=%.9g, reference %.12Lg (bound %Lg)", double(ga), gr, 64 * eps * scale);
    }
  }
}

/// The entry point body shared by the row harnesses: byte 0 picks float/double and the modes.
template <class F>
int row_fuzz_one(const std::uint8_t* data, std::size_t size) {
  Reader in(data, size);
  const std::uint8_t flags = in.u8();
  const std::uint64_t seed = hash_bytes(data, size);
  if (flags & 1) {
    run_row_case<F, double>(in, seed, flags);
  } else {
    run_row_case<F, float>(in, seed, flags);
  }
  return 0;
}

}  // namespace entmax_fuzz
