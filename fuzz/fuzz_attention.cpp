// libFuzzer harness: entmax::attention and attention_backward on random shapes (including empty
// extents and GQA head sharing), causal / key-length / boolean masks, explicit scales, thread
// counts and normalizers, float and double. Invariants checked:
// * the output agrees with a long-double reference within an error bound derived from the
//   inputs (GEMM error of the scores propagated through the 2-Lipschitz map, plus the map's own
//   tolerance, plus the error of P·V);
// * queries with no visible key give zero output rows and zero dq rows; keys no query can see
//   give zero dk and dv rows;
// * K/V rows that no query can see are poisoned with NaN / 1e30 and must not change a single
//   bit of the output or of the gradients;
// * results are bitwise identical for 1 and several threads;
// * gradients are finite; for softmax they agree with a long-double reference.
#include <entmax/attention.hpp>

#include "fuzz_common.hpp"

#include <array>

namespace {

using entmax_fuzz::LD;
template <class T>
using Tensor4 = Eigen::Tensor<T, 4, Eigen::RowMajor>;

struct Shape {
  Eigen::Index B, H, KH, Nq, Nk, D;
};

template <class T>
bool same_bits(const T* a, const T* b, Eigen::Index n) {
  return n == 0 || std::memcmp(a, b, sizeof(T) * static_cast<std::size_t>(n)) == 0;
}

template <class T, class Norm>
void run(entmax_fuzz::Reader& in, std::uint64_t seed, std::uint8_t flags) {
  const int kind = (flags >> 6) & 3;  // 0 softmax, 1 sparsemax, 2 entmax15, 3 bisect
  const std::uint8_t s0 = in.u8(), s1 = in.u8(), s2 = in.u8(), s3 = in.u8();
  Shape sh;
  sh.B = s0 % 3;                       // 0..2
  sh.H = 1 + (s0 >> 2) % 4;            // 1..4
  sh.KH = ((s0 >> 4) & 1) ? 1 : sh.H;  // GQA: one K/V head shared, or one per head
  if (sh.H == 4 && ((s0 >> 5) & 1)) sh.KH = 2;
  sh.Nq = s1 % 10;                       // 0..9
  sh.Nk = s2 % 41;                       // 0..40
  sh.D = s3 % 18;                        // 0..17
  if (sh.B == 0 && (s0 >> 6)) sh.B = 1;  // mostly non-empty
  const std::uint8_t scale_code = in.u8();
  const T alpha = static_cast<T>(1.1 + 0.9 * (in.u8() / 255.0));  // (1.1, 2]: J is 2-Lipschitz
  const int mag_exp = static_cast<int>(in.u8() % 24) - 12;
  const unsigned threads = 1 + in.u8() % 3;
  const bool causal = flags & 2, use_len = flags & 4, use_mask = flags & 8, poison = flags & 16;

  entmax::AttentionOptions<T> opt;
  opt.causal = causal;
  if (scale_code != 0) opt.scale = static_cast<T>(std::ldexp(1.0, (scale_code % 32) - 16));
  if (use_len) {
    for (Eigen::Index b = 0; b < sh.B; ++b)
      opt.key_lengths.push_back(static_cast<std::int64_t>(in.u8() % (sh.Nk + 1)));
  }
  Eigen::Tensor<bool, 4, Eigen::RowMajor> mask;
  const Eigen::Index mb = (flags & 32) ? sh.B : 1, mh = (flags & 32) ? sh.H : 1;
  if (use_mask) {
    mask.resize(mb, mh, sh.Nq, sh.Nk);
    const std::uint8_t density = in.u8();
    entmax_fuzz::Rng mr{seed ^ 0x5151};
    for (Eigen::Index i = 0; i < mask.size(); ++i) mask.data()[i] = (mr.next() & 255) < density;
    opt.mask = entmax::view(mask);
  }
  entmax_fuzz::Rng rng{seed};
  const double mag = std::ldexp(1.0, mag_exp);
  auto fill = [&](Tensor4<T>& t) {
    for (Eigen::Index i = 0; i < t.size(); ++i) t.data()[i] = static_cast<T>(rng.symmetric() * mag);
  };
  Tensor4<T> q(sh.B, sh.H, sh.Nq, sh.D), k(sh.B, sh.KH, sh.Nk, sh.D), v(sh.B, sh.KH, sh.Nk, sh.D),
      dout(sh.B, sh.H, sh.Nq, sh.D);
  fill(q), fill(k), fill(v), fill(dout);
  // Planted ties and spikes from the remaining bytes.
  while (in.left() >= 3 && k.size() > 0) {
    const std::size_t at =
        (static_cast<std::size_t>(in.u8()) << 8 | in.u8()) % static_cast<std::size_t>(k.size());
    const std::uint8_t what = in.u8();
    if (what < 128)
      k.data()[at] = k.data()[(at + 1) % static_cast<std::size_t>(k.size())];
    else
      k.data()[at] = static_cast<T>((what - 192) * mag * 8);
  }

  char buf[256];
  std::snprintf(
      buf, sizeof buf,
      "attention<%s> norm=%d alpha=%g B=%ld H=%ld KH=%ld Nq=%ld Nk=%ld D=%ld causal=%d len=%d mask=%d "
      "scale=%g mag=2^%d threads=%u",
      sizeof(T) == 4 ? "float" : "double", kind, double(alpha), long(sh.B), long(sh.H), long(sh.KH),
      long(sh.Nq), long(sh.Nk), long(sh.D), causal, use_len, use_mask, opt.scale ? double(*opt.scale) : -1.0,
      mag_exp, threads);
  const std::string ctx = buf;

  const Norm norm = [&] {
    if constexpr (std::is_same_v<Norm, entmax::EntmaxBisect<T>>) {
      return Norm{alpha};
    } else {
      return Norm{};
    }
  }();
  const T scale = opt.scale ? *opt.scale : (sh.D > 0 ? T(1) / std::sqrt(static_cast<T>(sh.D)) : T(1));
  const Eigen::Index group = sh.KH > 0 ? sh.H / sh.KH : 1;
  auto visible = [&](Eigen::Index b, Eigen::Index h, Eigen::Index i, Eigen::Index j) {
    if (causal && j > i + sh.Nk - sh.Nq) return false;
    if (use_len && j >= opt.key_lengths[static_cast<std::size_t>(b)]) return false;
    if (use_mask && !mask(mb == 1 ? 0 : b, mh == 1 ? 0 : h, i, j)) return false;
    return true;
  };

  const Tensor4<T> out = entmax::attention(q, k, v, norm, opt);
  ENTMAX_FUZZ_CHECK(out.dimension(0) == sh.B && out.dimension(1) == sh.H && out.dimension(2) == sh.Nq &&
                        out.dimension(3) == sh.D,
                    "output shape");

  // ---- long-double reference, row by row.
  const LD eps = std::numeric_limits<T>::epsilon();
  for (Eigen::Index b = 0; b < sh.B; ++b) {
    for (Eigen::Index h = 0; h < sh.H; ++h) {
      const Eigen::Index kh = h / group;
      for (Eigen::Index i = 0; i < sh.Nq; ++i) {
        std::vector<LD> z(static_cast<std::size_t>(sh.Nk)), zerr(z.size(), 0);
        bool any = false;
        for (Eigen::Index j = 0; j < sh.Nk; ++j) {
          const auto ju = static_cast<std::size_t>(j);
          if (!visible(b, h, i, j)) {
            z[ju] = -std::numeric_limits<LD>::infinity();
            continue;
          }
          any = true;
          LD dot = 0, adot = 0;
          for (Eigen::Index d = 0; d < sh.D; ++d) {
            dot += static_cast<LD>(q(b, h, i, d)) * static_cast<LD>(k(b, kh, j, d));
            adot += std::fabs(static_cast<LD>(q(b, h, i, d)) * static_cast<LD>(k(b, kh, j, d)));
          }
          z[ju] = static_cast<LD>(scale) * dot;
          zerr[ju] = static_cast<LD>(sh.D + 4) * eps * static_cast<LD>(scale) * adot;
        }
        if (!any) {
          for (Eigen::Index d = 0; d < sh.D; ++d) {
            ENTMAX_FUZZ_CHECK(out(b, h, i, d) == 0, "query (%ld,%ld,%ld) sees no key but o[%ld]=%g", long(b),
                              long(h), long(i), long(d), double(out(b, h, i, d)));
          }
          continue;
        }
        const LD ralpha = kind == 0 ? 1 : kind == 1 ? 2 : kind == 2 ? LD(1.5) : static_cast<LD>(alpha);
        const std::vector<LD> p =
            kind == 0 ? entmax_fuzz::ref_softmax(z) : entmax_fuzz::ref_entmax(z, ralpha);
        // ‖δp‖₁ ≤ 2 Σ u_j δz_j (u = p^(2−α) ≤ 1, softmax u = p) + the map's own error.
        LD dp_l1 = 0;
        for (std::size_t j = 0; j < z.size(); ++j) {
          const LD u = ralpha == 1 ? p[j] : (p[j] > 0 ? std::pow(p[j], 2 - ralpha) : LD(0));
          dp_l1 += 2 * u * zerr[j];
        }
        // A score error can also move the support: bound each entry by the row's largest δz.
        LD zerr_max = 0;
        for (LD e : zerr) zerr_max = std::max(zerr_max, e);
        const LD map_tol = entmax_fuzz::ref_tolerance<T>(ralpha, ralpha == 1);
        for (Eigen::Index d = 0; d < sh.D; ++d) {
          LD o = 0, vmax = 0, pv_abs = 0;
          for (Eigen::Index j = 0; j < sh.Nk; ++j) {
            const LD vj = static_cast<LD>(v(b, kh, j, d));
            const auto ju = static_cast<std::size_t>(j);
            o += p[ju] * vj;
            pv_abs += p[ju] * std::fabs(vj);
            if (visible(b, h, i, j)) vmax = std::max(vmax, std::fabs(vj));
          }
          const LD bound = 2 * ((dp_l1 + 2 * zerr_max + static_cast<LD>(sh.Nk) * map_tol) * vmax +
                                static_cast<LD>(sh.Nk + 4) * eps * pv_abs) +
                           4 * static_cast<LD>(std::numeric_limits<T>::denorm_min());
          const T got = out(b, h, i, d);
          ENTMAX_FUZZ_CHECK(std::isfinite(got) && std::fabs(static_cast<LD>(got) - o) <= bound,
                            "o(%ld,%ld,%ld,%ld)=%.9g, reference %.12Lg (bound %Lg)", long(b), long(h),
                            long(i), long(d), double(got), o, bound);
        }
      }
    }
  }

  // ---- keys no query can see: zero dk/dv, and poisoning them changes nothing.
  std::vector<char> seen(static_cast<std::size_t>(sh.B * sh.KH * sh.Nk), 0);
  for (Eigen::Index b = 0; b < sh.B; ++b)
    for (Eigen::Index h = 0; h < sh.H; ++h)
      for (Eigen::Index i = 0; i < sh.Nq; ++i)
        for (Eigen::Index j = 0; j < sh.Nk; ++j)
          if (visible(b, h, i, j)) seen[static_cast<std::size_t>((b * sh.KH + h / group) * sh.Nk + j)] = 1;

  const auto g = entmax::attention_backward(q, k, v, dout, norm, opt);
  for (Eigen::Index i = 0; i < g.dq.size(); ++i)
    ENTMAX_FUZZ_CHECK(std::isfinite(g.dq.data()[i]), "dq[%ld]=%g not finite", long(i),
                      double(g.dq.data()[i]));
  for (Eigen::Index i = 0; i < g.dk.size(); ++i) {
    ENTMAX_FUZZ_CHECK(std::isfinite(g.dk.data()[i]) && std::isfinite(g.dv.data()[i]), "dk/dv[%ld] not finite",
                      long(i));
    if (sh.D > 0 && !seen[static_cast<std::size_t>(i / sh.D)]) {
      ENTMAX_FUZZ_CHECK(g.dk.data()[i] == 0 && g.dv.data()[i] == 0,
                        "dk/dv[%ld] = %g/%g for a key no query sees", long(i), double(g.dk.data()[i]),
                        double(g.dv.data()[i]));
    }
  }
  for (Eigen::Index b = 0; b < sh.B; ++b)
    for (Eigen::Index h = 0; h < sh.H; ++h)
      for (Eigen::Index i = 0; i < sh.Nq; ++i) {
        bool any = false;
        for (Eigen::Index j = 0; j < sh.Nk; ++j) any = any || visible(b, h, i, j);
        if (any) continue;
        for (Eigen::Index d = 0; d < sh.D; ++d)
          ENTMAX_FUZZ_CHECK(g.dq(b, h, i, d) == 0, "dq of a query with no visible key = %g",
                            double(g.dq(b, h, i, d)));
      }

  if (poison) {
    Tensor4<T> kp = k, vp = v;
    const T nan = std::numeric_limits<T>::quiet_NaN();
    for (Eigen::Index r = 0; r < static_cast<Eigen::Index>(seen.size()); ++r) {
      if (seen[static_cast<std::size_t>(r)]) continue;
      for (Eigen::Index d = 0; d < sh.D; ++d) {
        kp.data()[r * sh.D + d] = (d % 2) ? nan : T(1e30);
        vp.data()[r * sh.D + d] = (d % 2) ? T(-1e30) : nan;
      }
    }
    const Tensor4<T> outp = entmax::attention(q, kp, vp, norm, opt);
    ENTMAX_FUZZ_CHECK(same_bits(out.data(), outp.data(), out.size()),
                      "poisoned unseen K/V changed the output");
    const auto gp = entmax::attention_backward(q, kp, vp, dout, norm, opt);
    ENTMAX_FUZZ_CHECK(same_bits(g.dq.data(), gp.dq.data(), g.dq.size()), "poisoned unseen K/V changed dq");
    for (Eigen::Index i = 0; i < g.dk.size(); ++i) {
      if (sh.D > 0 && seen[static_cast<std::size_t>(i / sh.D)]) {
        ENTMAX_FUZZ_CHECK(g.dk.data()[i] == gp.dk.data()[i] && g.dv.data()[i] == gp.dv.data()[i],
                          "poisoned unseen K/V changed dk/dv of a visible key");
      } else {
        ENTMAX_FUZZ_CHECK(gp.dk.data()[i] == 0 && gp.dv.data()[i] == 0, "poisoned key got a gradient");
      }
    }
  }

  if (threads > 1) {
    entmax::AttentionOptions<T> o2 = opt;
    o2.threads = threads;
    const Tensor4<T> out2 = entmax::attention(q, k, v, norm, o2);
    ENTMAX_FUZZ_CHECK(same_bits(out.data(), out2.data(), out.size()), "threads=%u changed the output",
                      threads);
    const auto g2 = entmax::attention_backward(q, k, v, dout, norm, o2);
    ENTMAX_FUZZ_CHECK(same_bits(g.dq.data(), g2.dq.data(), g.dq.size()) &&
                          same_bits(g.dk.data(), g2.dk.data(), g.dk.size()) &&
                          same_bits(g.dv.data(), g2.dv.data(), g.dv.size()),
                      "threads=%u changed the gradients", threads);
  }
}

template <class T>
void dispatch(entmax_fuzz::Reader& in, std::uint64_t seed, std::uint8_t flags) {
  switch ((flags >> 6) & 3) {
    case 0:
      run<T, entmax::Softmax>(in, seed, flags);
      break;
    case 1:
      run<T, entmax::Sparsemax>(in, seed, flags);
      break;
    case 2:
      run<T, entmax::Entmax15>(in, seed, flags);
      break;
    default:
      run<T, entmax::EntmaxBisect<T>>(in, seed, flags);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  entmax_fuzz::Reader in(data, size);
  const std::uint8_t flags = in.u8();
  const std::uint64_t seed = entmax_fuzz::hash_bytes(data, size);
  if (flags & 1) {
    dispatch<double>(in, seed, flags);
  } else {
    dispatch<float>(in, seed, flags);
  }
  return 0;
}
