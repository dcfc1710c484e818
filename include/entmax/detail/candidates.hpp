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

/// Fills buf[k, ⌈k⌉) with −inf up to a whole number of batches (buf needs that slack) and
/// returns that number of elements: filter_sums then drops the fill and has no scalar tail
/// (whose branches on unordered values mispredict).
template <class T, class Arch>
inline std::size_t pad_to_batches(T* buf, std::size_t k) {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size;
  std::size_t j = k;
  for (; j % W != 0; ++j) buf[j] = -std::numeric_limits<T>::infinity();
  return j;
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
/// step(θ, k, Σd, Σd², d_min) is newton, or (entmax-1.5) the root of the quadratic on the k
/// scores when it lies below the smallest of them (d_min) — then it is the threshold of those
/// scores exactly, taken a little lower (1e-9 relative, 1e-12 of |θ| + 1) to cover the rounding
/// of the plain sums.
struct SparsemaxBound {
  static double slack(double k) { return 1.0 / k; }
  static double newton(double theta, double k, double sd, double) { return theta + (sd - 1.0) / k; }
  static double step(double theta, double k, double sd, double sd2, double) {
    return newton(theta, k, sd, sd2);
  }
};
struct Entmax15Bound {
  static double slack(double k) { return 2.0 / std::sqrt(k); }
  // f = Σ((z − θ)/2)² − 1 = Σd²/4 − 1, df/dθ = −Σd/2.
  static double newton(double theta, double, double sd, double sd2) { return theta + (0.5 * sd2 - 2.0) / sd; }
  static double step(double theta, double k, double sd, double sd2, double dmin) {
    // Σ(d − δ)² = 4: δ = (Σd − √D)/k = (Σd² − 4)/(Σd + √D), D = (Σd)² − k(Σd² − 4), no cancellation.
    const double disc = sd * sd - k * (sd2 - 4.0);
    const double delta = (sd2 - 4.0) / (sd + std::sqrt(disc > 0.0 ? disc : 0.0));
    if (delta >= 0.0 && delta < dmin) return theta + delta * (1.0 - 1e-9) - 1e-12 * (std::fabs(theta) + 1.0);
    return newton(theta, k, sd, sd2);
  }
};

/// Lanes of the first read of collect_above_bound (its accumulators times the batch size).
template <class T, class Arch>
inline constexpr std::size_t collect_lanes = 4 * xsimd::batch<T, Arch>::size;

/// Scores per block of collect_above_bound (32 KiB, stays in L1 between its two reads).
template <class T>
inline constexpr std::size_t collect_block = 32768 / sizeof(T);

/// Elements of scratch collect_above_bound needs for a row of n: buf (n + batch), then tmp
/// (n + batch + lanes, then the maxima of the groups of a block).
template <class T, class Arch>
inline constexpr std::size_t collect_scratch_size(std::size_t n) {
  constexpr std::size_t W = xsimd::batch<T, Arch>::size, L = collect_lanes<T, Arch>;
  return 2 * (n + W) + L + (std::min(n, collect_block<T>) / L + 1) * W;
}

/// Elements of the hits list of collect_above_bound for a row of n.
template <class T, class Arch>
inline constexpr std::size_t collect_hits_size(std::size_t n) {
  return n / xsimd::batch<T, Arch>::size + 1;
}

/// Number of true lanes.
template <class T, class A>
inline std::size_t count_true(const xsimd::batch_bool<T, A>& b) {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) bool k[W];
  b.store_aligned(k);
  std::size_t c = 0;
  for (std::size_t j = 0; j < W; ++j) c += k[j] ? 1u : 0u;
  return c;
}

/// Collects into buf (n + batch elements), in index order, every score above a lower bound θ
/// of the absolute threshold — so buf holds a superset of the support — and finds the row's max
/// and whether it has a NaN. The row is read in blocks that stay in L1: a first read takes the
/// block's lane maxima (several accumulators) and the max; θ is raised with Newton steps from the
/// left (Bound) on the scores collected so far plus those lane maxima (any subset of the row
/// bounds θ* from below); a second read of the block collects the scores above θ. buf and tmp
/// are the two parts of collect_scratch_size(n) elements. Returns the number of collected scores; `scan`
/// gets max and invalid (min is not computed), `theta` the final bound (every score not
/// collected is ≤ theta). hits (n / batch + 1 elements) gets the first indices of the nhits
/// whole batches with a collected score, in order (scores after the last whole batch are not
/// listed); every other whole batch has only scores ≤ theta.
template <class T, class Arch, class Bound>
inline std::size_t collect_above_bound(const T* z, std::size_t n, T* buf, T* tmp, RowScan<T>& scan, T& theta,
                                       std::size_t* hits, std::size_t& nhits) {
  using B = xsimd::batch<T, Arch>;
  constexpr std::size_t W = B::size;
  constexpr std::size_t U = collect_lanes<T, Arch> / W;  // accumulators of the first read
  constexpr std::size_t block = collect_block<T>;        // a multiple of U·W
  static_assert(block % (U * W) == 0, "block must hold whole groups of batches");
  const T inf = std::numeric_limits<T>::infinity();
  const double dinf = std::numeric_limits<double>::infinity();
  const double tol = 16.0 * static_cast<double>(std::numeric_limits<T>::epsilon());
  T th = -inf;  // bound in T, applied to the scores (rounded down, with a margin)
  double bound = -dinf;
  auto raise_bound = [&](double cand) {
    // Only finite bounds: a mean of scores near the largest finite value can overflow to +inf
    // (then th would be NaN or +inf and every candidate would be dropped).
    if (cand > bound && cand < dinf) {
      bound = cand;
      // The margin (16 ε relative) exceeds the rounding to T, so th < cand stays a bound.
      th = static_cast<T>(cand - tol * (std::fabs(cand) + 1.0));
    }
  };
  // Newton steps from the left on tmp[0, c) (distinct scores of the row; compacted in place).
  auto tighten = [&](std::size_t c) {
    for (int round = 0; round < 8 && c > 0; ++round) {
      const double t0 = static_cast<double>(th);
      const FilterSums<T> f = filter_sums<T, Arch>(tmp, pad_to_batches<T, Arch>(tmp, c), t0);
      c = f.k;
      if (c == 0) break;
      const double before = bound, kd = static_cast<double>(c);
      raise_bound(t0 + f.sd / kd - Bound::slack(kd));  // the mean, without forming Σz
      if (std::isfinite(f.sd2) && f.sd > 0.0)
        raise_bound(Bound::step(t0, kd, f.sd, f.sd2, static_cast<double>(f.min) - t0));
      if (!(bound > before)) break;
    }
  };
  T mx = -inf;
  bool nan = false, dense = false;
  std::size_t k = 0, after_compaction = 0, h = 0;
  for (std::size_t b0 = 0; b0 < n; b0 += block) {
    const std::size_t b1 = std::min(n, b0 + block);
    const std::size_t k0 = k;
    B m[U];
    for (std::size_t u = 0; u < U; ++u) m[u] = B(-inf);
    std::size_t i = b0;
    if (!(th > -inf)) {
      // No bound yet (first block): read the block twice. First the lane maxima (which with
      // the candidates of earlier blocks raise the bound), the maximum of each group of U
      // batches, and a sum that is NaN when a score is NaN (or on inf − inf: then checked).
      T* gmax = tmp + n + W + U * W;
      B sum(T(0));
      for (; i + U * W <= b1; i += U * W) {
        B a[U];
        for (std::size_t u = 0; u < U; ++u) {
          a[u] = B::load_unaligned(z + i + u * W);
          m[u] = xsimd::max(m[u], a[u]);
        }
        B g = a[0], t = a[0];
        for (std::size_t u = 1; u < U; ++u) {
          g = xsimd::max(g, a[u]);
          t = t + a[u];
        }
        g.store_unaligned(gmax + (i - b0) / U);
        sum = sum + t;
      }
      const std::size_t groups_end = i;
      for (; i + W <= b1; i += W) {
        const B a = B::load_unaligned(z + i);
        m[0] = xsimd::max(m[0], a);
        sum = sum + a;
      }
      for (; i < b1; ++i) {
        mx = z[i] > mx ? z[i] : mx;
        nan = nan || (z[i] != z[i]);
      }
      if (xsimd::any(xsimd::isnan(sum)) && scan_row<T, Arch>(z + b0, b1 - b0).invalid) nan = true;
      B mall = m[0];
      for (std::size_t u = 1; u < U; ++u) mall = xsimd::max(mall, m[u]);
      const T bmax = reduce_max(mall);
      mx = bmax > mx ? bmax : mx;
      if (nan || mx == inf) break;  // an invalid row: nothing else is needed
      if (mx > -inf && mx < inf) raise_bound(static_cast<double>(mx) - Bound::slack(1.0));
      if (th > -inf) {
        std::copy(buf, buf + k, tmp);
        for (std::size_t u = 0; u < U; ++u) m[u].store_unaligned(tmp + k + u * W);
        tighten(k + U * W);
      }
      // Second read (from L1): the scores above th, group by group.
      const B tb(th);
      std::size_t above = 0;  // lane maxima above th: about the candidates per U·W lanes
      for (std::size_t u = 0; u < U; ++u) above += count_true(m[u] > tb);
      i = b0;
      if (2 * above > U * W) {  // many candidates: compress unconditionally (no mispredicted branches)
        for (; i + W <= b1; i += W) {
          const B zb = B::load_unaligned(z + i);
          const std::size_t c = compress_store(zb, zb > tb, buf + k);
          k += c;
          hits[h] = i;
          h += c != 0;
        }
      } else {
        for (; i < groups_end; i += U * W) {
          if (!xsimd::any(B::load_unaligned(gmax + (i - b0) / U) > tb)) continue;
          for (std::size_t u = 0; u < U; ++u) {
            const B zb = B::load_unaligned(z + i + u * W);
            const auto keep = zb > tb;
            if (xsimd::any(keep)) {
              k += compress_store(zb, keep, buf + k);
              hits[h++] = i + u * W;
            }
          }
        }
        for (; i + W <= b1; i += W) {
          const B zb = B::load_unaligned(z + i);
          const auto keep = zb > tb;
          if (xsimd::any(keep)) {
            k += compress_store(zb, keep, buf + k);
            hits[h++] = i;
          }
        }
      }
      for (; i < b1; ++i)
        if (z[i] > th) buf[k++] = z[i];
    } else {
      // A bound from the earlier blocks: one read for the max and the scores above th.
      const B tb(th);
      if (dense) {
        for (; i + U * W <= b1; i += U * W)
          for (std::size_t u = 0; u < U; ++u) {
            const B zb = B::load_unaligned(z + i + u * W);
            m[u] = xsimd::max(m[u], zb);
            const std::size_t c = compress_store(zb, !(zb <= tb), buf + k);
            k += c;
            hits[h] = i + u * W;
            h += c != 0;
          }
      } else {
        for (; i + U * W <= b1; i += U * W)
          for (std::size_t u = 0; u < U; ++u) {
            const B zb = B::load_unaligned(z + i + u * W);
            m[u] = xsimd::max(m[u], zb);
            const auto keep = !(zb <= tb);
            if (xsimd::any(keep)) {
              k += compress_store(zb, keep, buf + k);
              hits[h++] = i + u * W;
            }
          }
      }
      for (; i + W <= b1; i += W) {
        const B zb = B::load_unaligned(z + i);
        m[0] = xsimd::max(m[0], zb);
        const std::size_t c = compress_store(zb, !(zb <= tb), buf + k);
        k += c;
        hits[h] = i;
        h += c != 0;
      }
      for (; i < b1; ++i) {
        mx = z[i] > mx ? z[i] : mx;
        if (!(z[i] <= th)) buf[k++] = z[i];
      }
      B mall = m[0];
      for (std::size_t u = 1; u < U; ++u) mall = xsimd::max(mall, m[u]);
      const T bmax = reduce_max(mall);
      mx = bmax > mx ? bmax : mx;
    }
    for (std::size_t j = k0; j < k; ++j) nan = nan || (buf[j] != buf[j]);
    if (nan || mx == inf) break;  // an invalid row: nothing else is needed
    if (b1 >= n) break;
    // Raise the bound for the next block from the max and the candidates (they contain every
    // lane maximum above th, so the lane maxima are not added again), and keep them few.
    dense = (k - k0) * 8 * W > b1 - b0;  // more than one candidate per 8 batches
    if (mx > -inf && mx < inf) raise_bound(static_cast<double>(mx) - Bound::slack(1.0));
    if (th > -inf && k >= 2 * after_compaction + 64) {
      k = filter_sums<T, Arch>(buf, k, static_cast<double>(th)).k;
      after_compaction = k;
      std::copy(buf, buf + k, tmp);
      tighten(k);
    }
  }
  scan = RowScan<T>{mx, mx, nan || mx == inf};
  theta = th;
  nhits = h;
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
