// Naive long-double attention: materialises every score, normalizes each row with a direct
// long-double α-entmax (sort-based for α = 1.5 and 2, long bisection otherwise) or softmax, and
// differentiates with the closed-form Jacobian. Deliberately simple and independent of the
// library's kernels; used only by the tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <vector>

namespace entmax_ref {

/// One row map computed in R (long double for the reference; float/double for a naive
/// same-precision baseline). alpha == 1 means softmax.
template <class R = long double>
struct RowMap {
  using ld = R;
  ld alpha = 1;

  /// p = map(z); -inf entries get 0; an all -inf row gives zeros.
  std::vector<ld> forward(const std::vector<ld>& z) const {
    const std::size_t n = z.size();
    std::vector<ld> p(n, 0);
    ld m = -std::numeric_limits<ld>::infinity();
    for (ld x : z) m = std::max(m, x);
    if (n == 0 || m == -std::numeric_limits<ld>::infinity()) return p;
    if (alpha == 1) {
      ld s = 0;
      for (std::size_t i = 0; i < n; ++i) s += (p[i] = std::exp(z[i] - m));
      for (ld& x : p) x /= s;
      return p;
    }
    const ld am1 = alpha - 1;
    std::vector<ld> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = am1 * (z[i] - m);  // max is 0
    ld tau;
    if (alpha == 2 || alpha == 1.5L) {
      // Sort-based exact threshold on the sorted prefix that forms the support.
      std::vector<ld> s;
      for (ld x : y)
        if (x != -std::numeric_limits<ld>::infinity()) s.push_back(x);
      std::sort(s.begin(), s.end(), std::greater<ld>());
      tau = s[0] - 1;
      ld sum = 0, sum2 = 0;
      for (std::size_t k = 1; k <= s.size(); ++k) {
        sum += s[k - 1];
        sum2 += s[k - 1] * s[k - 1];
        ld t;
        if (alpha == 2) {
          t = (sum - 1) / ld(k);
        } else {  // Σ (y - t)^2 = 1 on the top k: t = mean - sqrt((1 - ss)/k), ss = Σ(y-mean)^2
          const ld mean = sum / ld(k);
          const ld ss = sum2 - ld(k) * mean * mean;
          const ld delta = (1 - ss) / ld(k);
          if (delta < 0) break;
          t = mean - std::sqrt(delta);
        }
        if (t < s[k - 1])
          tau = t;  // s[k-1] in the support
        else
          break;
      }
    } else {
      ld lo = -1, hi = -std::pow(ld(n), 1 - alpha);  // bracket from NUMERICS.md (max shifted to 0)
      lo -= ld(1e-6L), hi += ld(1e-6L);
      for (int it = 0; it < 400; ++it) {
        const ld mid = (lo + hi) / 2;
        if (mid == lo || mid == hi) break;
        ld f = -1;
        for (ld x : y)
          if (x > mid) f += std::pow(x - mid, 1 / am1);
        if (f >= 0)
          lo = mid;
        else
          hi = mid;
      }
      tau = lo;
    }
    ld s = 0;
    for (std::size_t i = 0; i < n; ++i) {
      p[i] = y[i] > tau ? std::pow(y[i] - tau, 1 / am1) : ld(0);
      s += p[i];
    }
    for (ld& x : p) x /= s;
    return p;
  }

  /// dz = J(p)^T dp with u = p^{2-α} on the support (softmax: u = p).
  std::vector<ld> backward(const std::vector<ld>& p, const std::vector<ld>& dp) const {
    const std::size_t n = p.size();
    std::vector<ld> u(n, 0), dz(n, 0);
    ld su = 0, sud = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] > 0) u[i] = alpha == 1 ? p[i] : std::pow(p[i], 2 - alpha);
      su += u[i];
      sud += u[i] * dp[i];
    }
    if (su == 0) return dz;
    for (std::size_t i = 0; i < n; ++i) dz[i] = u[i] * dp[i] - sud / su * u[i];
    return dz;
  }
};

/// Everything that shapes the scores: z = rowscale · polscale · (scale · q·k + bias + alibi).
template <class R = long double>
struct Options {
  using ld = R;
  bool causal = false;
  ld scale = 0;                        // 0: 1/sqrt(D)
  std::vector<long> key_len;           // per batch, empty: all keys
  std::vector<unsigned char> mask;     // [mb, mh, Nq, Nk], true = visible; empty: none
  std::size_t mask_b = 1, mask_h = 1;  // 1 or B / H (broadcast)
  std::vector<ld> bias;                // [bb, bh, Nq, Nk]; empty: none
  std::size_t bias_b = 1, bias_h = 1;
  std::vector<ld> alibi;      // per head: slope · (j − i − (Nk − Nq))
  std::vector<ld> row_scale;  // [B, H, Nq]; empty: 1
  // Row-scaled policy: scale of flat row r with npos = visible keys + 1 (null: none).
  std::function<ld(std::size_t row, std::size_t npos)> policy_scale;
};

template <class R = long double>
struct Result {
  using ld = R;
  std::vector<ld> o, dq, dk, dv;
  std::vector<ld> drow_scale;     // [B, H, Nq]
  std::vector<ld> dpolicy_scale;  // [B, H, Nq]: dL/ds of the policy scale
  std::vector<std::size_t> support;
};

/// q [B,H,Nq,D], k/v [B,KH,Nk,D], dout [B,H,Nq,D] (empty: no backward).
template <class R>
Result<R> attention(const std::vector<R>& q, const std::vector<R>& k, const std::vector<R>& v,
                    const std::vector<R>& dout, std::size_t B, std::size_t H, std::size_t KH, std::size_t Nq,
                    std::size_t Nk, std::size_t D, const RowMap<R>& map, const Options<R>& opt) {
  using ld = R;
  Result<R> r;
  r.o.assign(B * H * Nq * D, 0);
  r.dq.assign(B * H * Nq * D, 0);
  r.dk.assign(B * KH * Nk * D, 0);
  r.dv.assign(B * KH * Nk * D, 0);
  r.drow_scale.assign(B * H * Nq, 0);
  r.dpolicy_scale.assign(B * H * Nq, 0);
  r.support.assign(B * H * Nq, 0);
  const ld scale = opt.scale != 0 ? opt.scale : 1 / std::sqrt(ld(D));
  const ld ninf = -std::numeric_limits<ld>::infinity();
  const bool backward = !dout.empty();
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < H; ++h) {
      const std::size_t kh = h / (H / KH);
      for (std::size_t i = 0; i < Nq; ++i) {
        const std::size_t row = (b * H + h) * Nq + i;
        const ld* qi = q.data() + row * D;
        std::vector<ld> a(Nk), z(Nk);
        std::size_t visible = 0;
        for (std::size_t j = 0; j < Nk; ++j) {
          bool vis = true;
          if (opt.causal && ld(j) > ld(i) + ld(Nk) - ld(Nq)) vis = false;
          if (!opt.key_len.empty() && long(j) >= opt.key_len[b]) vis = false;
          if (!opt.mask.empty()) {
            const std::size_t mb = opt.mask_b == 1 ? 0 : b, mh = opt.mask_h == 1 ? 0 : h;
            if (!opt.mask[((mb * opt.mask_h + mh) * Nq + i) * Nk + j]) vis = false;
          }
          if (!vis) {
            a[j] = ninf;
            continue;
          }
          ++visible;
          const ld* kj = k.data() + ((b * KH + kh) * Nk + j) * D;
          ld dot = 0;
          for (std::size_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
          a[j] = scale * dot;
          if (!opt.bias.empty()) {
            const std::size_t bb = opt.bias_b == 1 ? 0 : b, bh = opt.bias_h == 1 ? 0 : h;
            a[j] += opt.bias[((bb * opt.bias_h + bh) * Nq + i) * Nk + j];
          }
          if (!opt.alibi.empty()) a[j] += opt.alibi[h] * (ld(j) - ld(i) - (ld(Nk) - ld(Nq)));
        }
        const ld rs = opt.row_scale.empty() ? 1 : opt.row_scale[row];
        ld ps = 1;
        if (opt.policy_scale && visible > 0) ps = opt.policy_scale(row, visible + 1);
        for (std::size_t j = 0; j < Nk; ++j) z[j] = a[j] == ninf ? ninf : ps * rs * a[j];
        const std::vector<ld> p = visible ? map.forward(z) : std::vector<ld>(Nk, 0);
        for (std::size_t j = 0; j < Nk; ++j) {
          if (p[j] == 0) continue;
          ++r.support[row];
          const ld* vj = v.data() + ((b * KH + kh) * Nk + j) * D;
          for (std::size_t d = 0; d < D; ++d) r.o[row * D + d] += p[j] * vj[d];
        }
        if (!backward || visible == 0) continue;
        const ld* doi = dout.data() + row * D;
        std::vector<ld> dp(Nk, 0);
        for (std::size_t j = 0; j < Nk; ++j) {
          if (a[j] == ninf) continue;
          const ld* vj = v.data() + ((b * KH + kh) * Nk + j) * D;
          for (std::size_t d = 0; d < D; ++d) dp[j] += doi[d] * vj[d];
        }
        const std::vector<ld> g = map.backward(p, dp);  // w.r.t. z
        ld dot_ga = 0;
        for (std::size_t j = 0; j < Nk; ++j)
          if (a[j] != ninf) dot_ga += g[j] * a[j];
        r.drow_scale[row] = ps * dot_ga;
        r.dpolicy_scale[row] = rs * dot_ga;
        for (std::size_t j = 0; j < Nk; ++j) {
          if (a[j] == ninf) continue;
          const ld ds = g[j] * ps * rs * scale;  // dL/d(q·k)
          ld* dkj = r.dk.data() + ((b * KH + kh) * Nk + j) * D;
          ld* dvj = r.dv.data() + ((b * KH + kh) * Nk + j) * D;
          const ld* kj = k.data() + ((b * KH + kh) * Nk + j) * D;
          for (std::size_t d = 0; d < D; ++d) {
            r.dq[row * D + d] += ds * kj[d];
            dkj[d] += ds * qi[d];
            dvj[d] += p[j] * doi[d];
          }
        }
      }
    }
  }
  return r;
}

}  // namespace entmax_ref
