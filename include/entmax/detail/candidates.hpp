// Candidate collection for the threshold searches: the elements of a shifted, scaled row that
// lie above a lower bound of τ (the only ones that can be in the support), compacted into a
// buffer with a vector compress where the arch has one.
#pragma once

#include <entmax/detail/simd.hpp>

#include <entmax/detail/accumulate.hpp>
#include <entmax/detail/row.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

namespace entmax::detail {

namespace compress_impl {
template <class T, class A>
inline std::size_t store(const xsimd::batch<T, A>& x, const xsimd::batch_bool<T, A>& keep, T* out,
                         xsimd::generic) {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  alignas(64) bool k[W];
  x.store_aligned(v);
  keep.store_aligned(k);
  std::size_t c = 0;
  for (std::size_t j = 0; j < W; ++j) {
    out[c] = v[j];
    c += k[j] ? 1u : 0u;
  }
  return c;
}
#if XSIMD_WITH_AVX512F
template <class A>
inline std::size_t store(const xsimd::batch<float, A>& x, const xsimd::batch_bool<float, A>& keep, float* out,
                         xsimd::avx512f) {
  const __mmask16 m = keep.data;
  _mm512_storeu_ps(out, _mm512_maskz_compress_ps(m, x));
  return static_cast<std::size_t>(__builtin_popcount(m));
}
template <class A>
inline std::size_t store(const xsimd::batch<double, A>& x, const xsimd::batch_bool<double, A>& keep,
                         double* out, xsimd::avx512f) {
  const __mmask8 m = keep.data;
  _mm512_storeu_pd(out, _mm512_maskz_compress_pd(m, x));
  return static_cast<std::size_t>(__builtin_popcount(m));
}
#endif
}  // namespace compress_impl

/// Writes the kept lanes of x, in order, to out[0, count) and returns count. May write up to
/// a full batch past out + count (the buffer needs that slack).
template <class T, class A>
inline std::size_t compress_store(const xsimd::batch<T, A>& x, const xsimd::batch_bool<T, A>& keep, T* out) {
  return compress_impl::store(x, keep, out, A{});
}

/// Shifted, scaled scores x_i = scale·(z_i − m) that exceed `bound`, compacted into out (which
/// needs n + batch size elements). Returns their number. The values are computed with exactly
/// the operations the output passes use, so a τ found on them certifies the row.
template <class T, class Arch>
inline std::size_t collect_candidates(const T* z, std::size_t n, T m, T scale, T bound, T* out) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B mb(m), sb(scale), lb(bound);
  std::size_t i = 0, c = 0;
  for (; i + W <= n; i += W) {
    const B x = (B::load_unaligned(z + i) - mb) * sb;
    const auto keep = x > lb;
    if (xsimd::any(keep)) c += compress_store(x, keep, out + c);
  }
  for (; i < n; ++i) {
    const T x = (z[i] - m) * scale;
    if (x > bound) out[c++] = x;
  }
  return c;
}

/// Largest T ≤ t: for x in T, x > t ⇔ x > round_down(t).
template <class T>
inline T round_down(double t) {
  T r = static_cast<T>(t);
  if (static_cast<double>(r) > t) r = std::nextafter(r, -std::numeric_limits<T>::infinity());
  return r;
}

/// Sums of one filtering pass: k kept values (x > t), Σd and Σd² with d = x − t, min kept x.
template <class T>
struct FilterSums {
  std::size_t k;
  double sd, sd2;
  T min;
};

/// Keeps buf[j] > t (compacted in place, order preserved) and sums d = x − t, d² over the kept
/// values in double (plain sums in several lanes: used to search, not to finish).
template <class T, class Arch>
inline FilterSums<T> filter_sums(T* buf, std::size_t k, double t) {
  using B = xsimd::batch<T, Arch>;
  using BD = xsimd::batch<double, Arch>;
  constexpr std::size_t W = B::size;
  const T inf = std::numeric_limits<T>::infinity();
  const B tb(round_down<T>(t));
  const BD td(t), zd(0.0);
  BD s1(0.0), s2(0.0);
  B vmin(inf);
  std::size_t c = 0, j = 0;
  for (; j + W <= k; j += W) {
    const B x = B::load_unaligned(buf + j);
    const auto keep = x > tb;
    c += compress_store(x, keep, buf + c);
    vmin = xsimd::min(vmin, xsimd::select(keep, x, B(inf)));
    if constexpr (std::is_same_v<T, float>) {
      BD lo, hi;
      split_to_double(x, lo, hi);
      const BD dl = xsimd::max(lo - td, zd), dh = xsimd::max(hi - td, zd);  // 0 for dropped values
      s1 = s1 + (dl + dh);
      s2 = detail::fma(dl, dl, detail::fma(dh, dh, s2));
    } else {
      const BD d = xsimd::max(x - td, zd);
      s1 = s1 + d;
      s2 = detail::fma(d, d, s2);
    }
  }
  double sd = reduce_add(s1), sd2 = reduce_add(s2);
  T mn = -reduce_max(-vmin);
  for (; j < k; ++j) {
    const T x = buf[j];
    if (static_cast<double>(x) > t) {
      buf[c++] = x;
      const double d = static_cast<double>(x) - t;
      sd += d;
      sd2 += d * d;
      mn = x < mn ? x : mn;
    }
  }
  return FilterSums<T>{c, sd, sd2, mn};
}

/// Lower bounds of the absolute threshold θ* = max + τ*/scale (support: z > θ*) from any
/// subset S of the row: θ(S) = mean_z(S) − slack(|S|). Sparsemax: Σ_S (z − θ) ≤ Σ (z − θ)_+
/// gives slack 1/k. Entmax-1.5: (t)_+² ≥ 2at − a² (a = 1/√k) gives slack 2/√k.
/// newton(θ, k, Σd, Σd²), with d = z − θ over the k scores above a lower bound θ, is one
/// Newton step from the left on f (convex, decreasing), hence also a lower bound.
struct SparsemaxBound {
  static double slack(double k) { return 1.0 / k; }
  static double newton(double theta, double k, double sd, double) { return theta + (sd - 1.0) / k; }
};
struct Entmax15Bound {
  static double slack(double k) { return 2.0 / std::sqrt(k); }
  // f = Σ((z − θ)/2)² − 1 = Σd²/4 − 1, df/dθ = −Σd/2.
  static double newton(double theta, double, double sd, double sd2) { return theta + (0.5 * sd2 - 2.0) / sd; }
};

/// One pass over the row that finds its max, detects NaN, and collects into buf (n + batch
/// elements) every score above a running lower bound θ of the absolute threshold — so buf
/// holds a superset of the support. θ is raised at chunk ends from the collected scores
/// (Bound::slack) and the running max, and the buffer is compacted whenever it has doubled.
/// Returns the number of collected scores; `scan` gets max and invalid (min is not computed),
/// `theta` the final bound (every score not collected is ≤ theta).
template <class T, class Arch, class Bound>
inline std::size_t collect_above_bound(const T* z, std::size_t n, T* buf, RowScan<T>& scan, T& theta) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const T inf = std::numeric_limits<T>::infinity();
  const double tol = 16.0 * static_cast<double>(std::numeric_limits<T>::epsilon());
  B vmax(-inf);
  auto bad = B(T(0)) > B(T(0));
  T th = -inf;  // bound in T, applied to the scores (rounded down, with a margin)
  double bound = -std::numeric_limits<double>::infinity();
  double sum = 0.0;  // Σ of buf[0, k)
  std::size_t k = 0, summed = 0, after_compaction = 0;
  std::size_t i = 0;
  std::size_t chunk = 8 * W;  // a short first chunk: the bound tightens early
  bool dense = false;
  auto raise_bound = [&](double cand) {
    // Only finite bounds: a mean of scores near the largest finite value can overflow to +inf
    // (then th would be NaN or +inf and every candidate would be dropped).
    if (cand > bound && cand < std::numeric_limits<double>::infinity()) {
      bound = cand;
      // The margin (16 ε relative) exceeds the rounding to T, so th < cand stays a bound.
      th = static_cast<T>(cand - tol * (std::fabs(cand) + 1.0));
    }
  };
  auto refresh = [&](T running_max) {
    {
      xsimd::batch<double, Arch> acc(0.0);
      for (; summed + W <= k; summed += W) add_to_double(acc, B::load_unaligned(buf + summed));
      sum += reduce_add(acc);
      for (; summed < k; ++summed) sum += static_cast<double>(buf[summed]);
    }
    if (running_max > -inf && running_max < inf)
      raise_bound(static_cast<double>(running_max) - Bound::slack(1.0));
    if (k > 0 && sum == sum && std::fabs(sum) < std::numeric_limits<double>::infinity())
      raise_bound(sum / static_cast<double>(k) - Bound::slack(static_cast<double>(k)));
    if (k >= 2 * after_compaction + 64) {
      for (int round = 0; round < 2; ++round) {  // compact; a tighter subset may raise the bound
        const double t0 = static_cast<double>(th);
        const FilterSums<T> f = filter_sums<T, Arch>(buf, k, t0);
        const double sd = f.sd, sd2 = f.sd2;
        const bool dropped = f.k < k;
        k = summed = f.k;
        sum = sd + static_cast<double>(k) * t0;
        const double before = bound;
        if (k > 0) {
          const double kd = static_cast<double>(k);
          raise_bound(t0 + sd / kd - Bound::slack(kd));  // the mean, without forming Σz
          if (std::isfinite(sd2) && sd > 0.0) raise_bound(Bound::newton(t0, kd, sd, sd2));
        }
        if (!dropped || !(bound > before)) break;
      }
      after_compaction = k;
    }
  };
  if (n >= chunk) {  // the max of a first chunk gives a starting bound (re-read from L1 below)
    B m0 = B::load_unaligned(z);
    for (std::size_t j = W; j < chunk; j += W) m0 = xsimd::max(m0, B::load_unaligned(z + j));
    const T mx0 = reduce_max(m0);
    if (mx0 > -inf && mx0 < inf) raise_bound(static_cast<double>(mx0) - Bound::slack(1.0));
  }
  while (i + W <= n) {
    const std::size_t end = std::min(n - (n - i) % W, i + chunk);
    const B tb(th);
    const std::size_t k_start = k;
    if (dense) {  // many candidates: compress unconditionally (no mispredicted branches)
      for (; i < end; i += W) {
        const B zb = B::load_unaligned(z + i);
        vmax = xsimd::max(vmax, zb);
        bad = bad | xsimd::isnan(zb);
        k += compress_store(zb, zb > tb, buf + k);
      }
    } else {
      for (; i < end; i += W) {
        const B zb = B::load_unaligned(z + i);
        vmax = xsimd::max(vmax, zb);
        bad = bad | xsimd::isnan(zb);
        const auto keep = zb > tb;
        if (xsimd::any(keep)) k += compress_store(zb, keep, buf + k);
      }
    }
    dense = (k - k_start) * 8 * W > chunk;  // more than one candidate per 8 batches
    refresh(reduce_max(vmax));
    chunk = 16 * W;
  }
  T mx = reduce_max(vmax);
  bool nan = xsimd::any(bad);
  for (; i < n; ++i) {
    const T v = z[i];
    nan = nan || (v != v);
    mx = v > mx ? v : mx;
    if (v > th) buf[k++] = v;
  }
  scan = RowScan<T>{mx, mx, nan || mx == inf};
  theta = th;
  return k;
}

/// buf[j] = (buf[j] − m)·scale, with the same operations as the output passes.
template <class T, class Arch>
inline void shift_scale(T* buf, std::size_t k, T m, T scale) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  const B mb(m), sb(scale);
  std::size_t j = 0;
  for (; j + W <= k; j += W) ((B::load_unaligned(buf + j) - mb) * sb).store_unaligned(buf + j);
  for (; j < k; ++j) buf[j] = (buf[j] - m) * scale;
}

}  // namespace entmax::detail
