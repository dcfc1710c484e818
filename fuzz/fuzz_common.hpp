// Shared pieces of the libFuzzer harnesses: an input decoder, a seeded generator for upstream
// gradients, long-double reference maps and the invariant checks (a failed check prints the
// case and aborts, so libFuzzer saves the input as a crash).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace entmax_fuzz {

using LD = long double;

/// Reads the fuzzer's bytes front to back; past the end every read gives 0.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : std::uint8_t{0}; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::size_t left() const { return size_ - pos_; }
  template <class T>
  T raw() {
    T v{};
    unsigned char b[sizeof(T)];
    for (auto& c : b) c = u8();
    std::memcpy(&v, b, sizeof(T));
    return v;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

/// splitmix64: a tiny deterministic generator seeded from the input.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double symmetric() { return 2 * uniform() - 1; }                            // [-1, 1)
};

inline std::uint64_t hash_bytes(const std::uint8_t* d, std::size_t n) {
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ d[i]) * 1099511628211ull;
  return h;
}

/// Row encoding (see fuzz/README.md): a mode byte picks raw IEEE values or byte codes.
/// Byte codes: 0 -> -inf, 1 -> NaN or -inf, 2 -> +inf or the largest finite, 3 -> smallest
/// subnormal, otherwise (b - 128) * 2^e with e from the header.
template <class T>
std::vector<T> decode_row(Reader& in, bool raw, bool specials, int exponent, std::size_t max_n) {
  std::vector<T> z;
  if (raw) {
    while (in.left() >= sizeof(T) && z.size() < max_n) z.push_back(in.raw<T>());
    if (!specials) {
      for (T& v : z) {
        if (std::isnan(v) || v == std::numeric_limits<T>::infinity()) v = -std::numeric_limits<T>::infinity();
      }
    }
    return z;
  }
  const T inf = std::numeric_limits<T>::infinity();
  while (in.left() > 0 && z.size() < max_n) {
    const std::uint8_t b = in.u8();
    T v;
    switch (b) {
      case 0:
        v = -inf;
        break;
      case 1:
        v = specials ? std::numeric_limits<T>::quiet_NaN() : -inf;
        break;
      case 2:
        v = specials ? inf : std::numeric_limits<T>::max();
        break;
      case 3:
        v = std::numeric_limits<T>::denorm_min();
        break;
      default:
        v = static_cast<T>(std::ldexp(static_cast<double>(static_cast<int>(b) - 128), exponent));
        break;
    }
    z.push_back(v);
  }
  return z;
}

template <class T>
bool is_bad_score(T v) {
  return std::isnan(v) || v == std::numeric_limits<T>::infinity();
}

template <class T>
std::string show(const std::vector<T>& v, std::size_t limit = 64) {
  std::string s = "[";
  char buf[64];
  for (std::size_t i = 0; i < v.size() && i < limit; ++i) {
    std::snprintf(buf, sizeof buf, "%s%.21Lg", i ? ", " : "", static_cast<LD>(v[i]));
    s += buf;
  }
  if (v.size() > limit) s += ", ...";
  return s + "]";
}

/// Prints a failed invariant with the case and aborts (libFuzzer keeps the input).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "\nINVARIANT VIOLATED: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define ENTMAX_FUZZ_CHECK(cond, ...)                                                      \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      char fuzz_buf_[512];                                                                \
      std::snprintf(fuzz_buf_, sizeof fuzz_buf_, __VA_ARGS__);                            \
      ::entmax_fuzz::fail(std::string(#cond) + ": " + fuzz_buf_ + "\n  context: " + ctx); \
    }                                                                                     \
  } while (0)

// ---------------------------------------------------------------- long-double references

/// Tolerance of the agreement with the long-double reference (NUMERICS.md table, with the
/// documented α-near-1 limit of docs/numerics.md: ε/(α−1) when that exceeds 16ε).
template <class T>
LD ref_tolerance(LD alpha, bool softmax) {
  const LD eps = std::numeric_limits<T>::epsilon();
  if (softmax) return 16 * eps;
  if (alpha > 2) return std::max<LD>(16 * eps, 4 * std::pow(eps, 1 / (alpha - 1)));
  return std::max<LD>(16 * eps, eps / (alpha - 1));
}

/// Above this α the long-double reference itself is only ε_ld^{1/(α−1)} accurate: no comparison.
inline constexpr LD max_reference_alpha = 5;

/// ref_tolerance for the row `ref` (the reference output). For α > 2 every entry within the
/// tolerance of the threshold may be off by that much, and the normalisation moves their summed
/// error onto the others (docs/numerics.md, "Limits"): the tolerance times their count + 1.
template <class T>
LD row_ref_tolerance(const std::vector<LD>& ref, LD alpha, bool softmax) {
  const LD tol = ref_tolerance<T>(alpha, softmax);
  if (softmax || alpha <= 2) return tol;
  std::size_t near = 1;
  for (LD r : ref) near += (r > 0 && r <= tol) ? 1 : 0;
  return tol * static_cast<LD>(near);
}

/// Softmax of z (masked -inf entries give 0); all -inf gives zeros.
inline std::vector<LD> ref_softmax(const std::vector<LD>& z) {
  std::vector<LD> p(z.size(), 0);
  LD m = -std::numeric_limits<LD>::infinity();
  for (LD v : z) m = std::max(m, v);
  if (!std::isfinite(m)) return p;
  LD s = 0;
  for (std::size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp(z[i] - m));
  for (LD& v : p) v /= s;
  return p;
}

/// α-entmax of z for α > 1 by bisection on τ over the bracket [-1, -k^(1-α)] in shifted
/// coordinates (k = number of finite scores), 200 halvings in long double, renormalised.
inline std::vector<LD> ref_entmax(const std::vector<LD>& z, LD alpha) {
  const std::size_t n = z.size();
  std::vector<LD> p(n, 0);
  LD m = -std::numeric_limits<LD>::infinity();
  std::size_t k = 0;
  for (LD v : z) {
    m = std::max(m, v);
    k += std::isfinite(v) ? 1 : 0;
  }
  if (!std::isfinite(m)) return p;
  const LD am1 = alpha - 1;
  std::vector<LD> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = am1 * (z[i] - m);
  auto mass = [&](LD tau) {
    LD s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (x[i] > tau) s += (alpha == 2 ? x[i] - tau : std::pow(x[i] - tau, 1 / am1));
    }
    return s;
  };
  LD lo = -1, hi = -std::pow(static_cast<LD>(k), -am1);
  for (int it = 0; it < 200 && lo < hi; ++it) {
    const LD mid = (lo + hi) / 2;
    if (mid <= lo || mid >= hi) break;
    (mass(mid) >= 1 ? lo : hi) = mid;
  }
  LD s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (x[i] > lo) s += (p[i] = alpha == 2 ? x[i] - lo : std::pow(x[i] - lo, 1 / am1));
  }
  for (LD& v : p) v /= s;
  return p;
}

/// dz = u ⊙ dp − (⟨u, dp⟩ / Σu) u with u = p^(2−α) on the support (α = 1: u = p, softmax).
inline std::vector<LD> ref_backward(const std::vector<LD>& p, const std::vector<LD>& dp, LD alpha,
                                    std::vector<LD>* u_out = nullptr) {
  const std::size_t n = p.size();
  std::vector<LD> u(n, 0), dz(n, 0);
  LD su = 0, sud = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] > 0) u[i] = alpha == 1 ? p[i] : std::pow(p[i], 2 - alpha);
    su += u[i];
    sud += u[i] * dp[i];
  }
  if (su > 0) {
    for (std::size_t i = 0; i < n; ++i) dz[i] = u[i] * dp[i] - sud / su * u[i];
  }
  if (u_out) *u_out = u;
  return dz;
}

/// Error scale of the backward dz = u ⊙ dp − (⟨u, dp⟩ / Σu) u, per entry: the magnitude of the
/// terms it cancels, u_i (|dp_i| + Σu|dp| / Σu). `row` is the largest entry's scale: an error in
/// the shared mean reaches every entry through it. A bound relative to |dz| itself would be
/// wrong: on a nearly one-hot row dz_max cancels to ~u_small while its terms are ~|dp|.
struct BackwardScale {
  std::vector<LD> term;
  LD row = 0;
};

inline BackwardScale backward_scale(const std::vector<LD>& u, const std::vector<LD>& dp) {
  const std::size_t n = u.size();
  LD su = 0, sudabs = 0;
  for (std::size_t i = 0; i < n; ++i) su += u[i], sudabs += u[i] * std::fabs(dp[i]);
  const LD kabs = su > 0 ? sudabs / su : 0;
  BackwardScale out{std::vector<LD>(n), 0};
  for (std::size_t i = 0; i < n; ++i) {
    out.term[i] = u[i] * (std::fabs(dp[i]) + kabs);
    out.row = std::max(out.row, out.term[i]);
  }
  return out;
}

/// dL/dα (Correia et al. 2019) evaluated in long double; `scale` receives the sum of the
/// magnitudes of its terms (the natural error scale).
inline LD ref_alpha_grad(const std::vector<LD>& p, const std::vector<LD>& dp, LD alpha, LD* scale) {
  const std::size_t n = p.size();
  std::vector<LD> u(n, 0), S(n, 0);
  LD su = 0, H = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] > 0) {
      u[i] = std::pow(p[i], 2 - alpha);
      S[i] = p[i] * std::log(p[i]);
    }
    su += u[i];
    H += S[i];
  }
  const LD am1 = alpha - 1;
  LD g = 0, a = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const LD ut = su > 0 ? u[i] / su : 0;
    g += dp[i] * ((p[i] - ut) / (am1 * am1) - (S[i] - ut * H) / am1);
    a += std::fabs(dp[i]) * ((p[i] + ut) / (am1 * am1) + (std::fabs(S[i]) + ut * std::fabs(H)) / am1);
  }
  if (scale) *scale = a;
  return g;
}

}  // namespace entmax_fuzz
