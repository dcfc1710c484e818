// Scores S = Qs · Kᵀ of many query blocks against the same keys, with K packed once.
//
// An Eigen product packs both operands on every call; for a 64-row query block against N keys
// that is a (transposing) copy of all of K per block, 10–15 % of the attention forward. Here K is
// packed once per (batch, kv head) slice into Eigen's GEBP panel layout, in fixed chunks of keys,
// and each block only packs its small query block and runs Eigen's GEBP micro-kernel. The chunks
// are packed independently, so a key prefix made of whole chunks is a valid packed operand.
// Uses Eigen 3.4's internal GEBP interface (gebp_traits, gemm_pack_lhs/rhs, gebp_kernel). For
// float on AVX-512 a kernel of its own writes S directly (no zeroing pass and no read-modify-write
// of S): K in panels of 16 keys (zero-padded), tiles of 4 query rows × 48 keys in 12 registers.
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace entmax::detail {

template <class T>
struct KeyPacking {
  using Index = std::ptrdiff_t;
  using Traits = Eigen::internal::gebp_traits<T, T>;
  using LhsMapper = Eigen::internal::const_blas_data_mapper<T, Index, Eigen::RowMajor>;
  using RhsMapper = Eigen::internal::const_blas_data_mapper<T, Index, Eigen::ColMajor>;
  using ResMapper = Eigen::internal::blas_data_mapper<T, Index, Eigen::ColMajor, Eigen::Unaligned, 1>;
  using PackLhs = Eigen::internal::gemm_pack_lhs<T, Index, LhsMapper, Traits::mr, Traits::LhsProgress,
                                                 typename Traits::LhsPacket4Packing, Eigen::RowMajor>;
  using PackRhs = Eigen::internal::gemm_pack_rhs<T, Index, RhsMapper, Traits::nr, Eigen::ColMajor>;
  using Gebp = Eigen::internal::gebp_kernel<T, T, Index, ResMapper, Traits::mr, Traits::nr, false, false>;
  /// Keys per independently packed chunk (a multiple of the micro-kernel's row panel).
  static constexpr Index chunk = 4 * static_cast<Index>(Traits::mr);
};

template <class T>
using AlignedVector = std::vector<T, Eigen::aligned_allocator<T>>;

/// Whether float keys use the AVX-512 kernel of this header (own panel layout) rather than GEBP.
template <class T>
inline constexpr bool own_score_kernel =
#if defined(__AVX512F__)
    std::is_same_v<T, float>;
#else
    false;
#endif

/// Fewest keys for which packing pays (one chunk or panel).
template <class T>
constexpr std::ptrdiff_t min_packed_keys() {
  return own_score_kernel<T> ? 16 : KeyPacking<T>::chunk;
}

/// Entries of the packed form of N keys of dimension D.
template <class T>
std::ptrdiff_t packed_size(std::ptrdiff_t N, std::ptrdiff_t D) {
  return own_score_kernel<T> ? (N + 15) / 16 * 16 * D : N * D;
}

/// Packs the N × D row-major keys K into dst (packed_size entries, aligned to 64 bytes).
/// GEBP layout: chunk by chunk, every chunk starting at a multiple of the SIMD width (a chunk has a
/// multiple of mr rows). Own layout: panels of 16 keys, dst[p·16·D + d·16 + l] = K[16p + l][d],
/// lanes past N zero.
template <class T>
void pack_keys(const T* K, std::ptrdiff_t N, std::ptrdiff_t D, T* dst) {
  if constexpr (own_score_kernel<T>) {
    for (std::ptrdiff_t p = 0; p * 16 < N; ++p) {
      T* o = dst + p * 16 * D;
      const std::ptrdiff_t lanes = std::min<std::ptrdiff_t>(16, N - p * 16);
      for (std::ptrdiff_t d = 0; d < D; ++d)
        for (std::ptrdiff_t l = 0; l < 16; ++l) o[d * 16 + l] = l < lanes ? K[(p * 16 + l) * D + d] : T(0);
    }
  } else {
    using KP = KeyPacking<T>;
    typename KP::PackLhs pack;
    for (std::ptrdiff_t c0 = 0; c0 < N; c0 += KP::chunk) {
      const std::ptrdiff_t rows = std::min(KP::chunk, N - c0);
      pack(dst + c0 * D, typename KP::LhsMapper(K + c0 * D, D), D, rows);
    }
  }
}

#if defined(__AVX512F__)
/// S[r][16p + 16i + l] = Σ_d Qs[r][d] · K[16p + 16i + l][d] (d ascending, fused) for RQ rows and
/// P panels; the last panel is stored under mask `last`.
template <std::size_t RQ, std::size_t P>
inline void score_tile(const float* kp, std::ptrdiff_t D, const float* q, float* S, std::ptrdiff_t lds,
                       __mmask16 last) {
  __m512 acc[RQ][P];
  for (std::size_t r = 0; r < RQ; ++r)
    for (std::size_t i = 0; i < P; ++i) acc[r][i] = _mm512_setzero_ps();
  const std::ptrdiff_t ps = 16 * D;
  for (std::ptrdiff_t d = 0; d < D; ++d) {
    __m512 k[P];
    for (std::size_t i = 0; i < P; ++i)
      k[i] = _mm512_load_ps(kp + static_cast<std::ptrdiff_t>(i) * ps + d * 16);
    for (std::size_t r = 0; r < RQ; ++r) {
      const __m512 x = _mm512_set1_ps(q[static_cast<std::ptrdiff_t>(r) * D + d]);
      for (std::size_t i = 0; i < P; ++i) acc[r][i] = _mm512_fmadd_ps(k[i], x, acc[r][i]);
    }
  }
  for (std::size_t r = 0; r < RQ; ++r) {
    for (std::size_t i = 0; i + 1 < P; ++i)
      _mm512_storeu_ps(S + static_cast<std::ptrdiff_t>(r) * lds + 16 * static_cast<std::ptrdiff_t>(i),
                       acc[r][i]);
    _mm512_mask_storeu_ps(S + static_cast<std::ptrdiff_t>(r) * lds + 16 * static_cast<std::ptrdiff_t>(P - 1),
                          last, acc[r][P - 1]);
  }
}

template <std::size_t P>
inline void score_panels(const float* kp, std::ptrdiff_t D, const float* Qs, std::ptrdiff_t R, float* S,
                         std::ptrdiff_t lds, __mmask16 last) {
  std::ptrdiff_t r = 0;
  for (; r + 4 <= R; r += 4) score_tile<4, P>(kp, D, Qs + r * D, S + r * lds, lds, last);
  for (; r < R; ++r) score_tile<1, P>(kp, D, Qs + r * D, S + r * lds, lds, last);
}

/// S (R × ncols, row stride lds) = Qs · K[0, ncols)ᵀ from the own panel layout.
inline void own_scores(const float* packedK, std::ptrdiff_t ncols, std::ptrdiff_t D, const float* Qs,
                       std::ptrdiff_t R, float* S, std::ptrdiff_t lds) {
  const std::ptrdiff_t np = (ncols + 15) / 16;
  const auto tail = static_cast<unsigned>(ncols % 16);
  const auto last_mask = static_cast<__mmask16>(tail ? (1u << tail) - 1u : 0xFFFFu);
  std::ptrdiff_t p = 0;
  for (; p + 3 <= np; p += 3)
    score_panels<3>(packedK + p * 16 * D, D, Qs, R, S + p * 16, lds,
                    p + 3 == np ? last_mask : static_cast<__mmask16>(0xFFFF));
  for (; p < np; ++p)
    score_panels<1>(packedK + p * 16 * D, D, Qs, R, S + p * 16, lds,
                    p + 1 == np ? last_mask : static_cast<__mmask16>(0xFFFF));
}
#endif

/// S (R × ncols, row stride lds) = Qs (R × D, row-major) · K[0, ncols)ᵀ from packedK (pack_keys of
/// K). GEBP layout: the whole chunks of [0, ncols) from packedK, the rest from K by an Eigen
/// product. bbuf is scratch for the packed query block.
template <class T>
void packed_scores(const T* packedK, const T* K, std::ptrdiff_t ncols, std::ptrdiff_t D, const T* Qs,
                   std::ptrdiff_t R, T* S, std::ptrdiff_t lds, AlignedVector<T>& bbuf) {
#if defined(__AVX512F__)
  if constexpr (own_score_kernel<T>) {
    (void)K, (void)bbuf;
    own_scores(packedK, ncols, D, Qs, R, S, lds);
    return;
  }
#endif
  using KP = KeyPacking<T>;
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::ptrdiff_t full = ncols / KP::chunk * KP::chunk;
  if (full > 0) {
    if (bbuf.size() < static_cast<std::size_t>(R * D)) bbuf.resize(static_cast<std::size_t>(R * D));
    typename KP::PackRhs pack;
    pack(bbuf.data(), typename KP::RhsMapper(Qs, D), D, R);
    for (std::ptrdiff_t r = 0; r < R; ++r)
      std::memset(S + r * lds, 0, static_cast<std::size_t>(full) * sizeof(T));
    // Sᵀ (keys × R, column-major with stride lds) += K · Qsᵀ, chunk by chunk.
    const typename KP::ResMapper res(S, lds);
    typename KP::Gebp gebp;
    for (std::ptrdiff_t c0 = 0; c0 < full; c0 += KP::chunk)
      gebp(res.getSubMapper(c0, 0), packedK + c0 * D, bbuf.data(), KP::chunk, D, R, T(1));
  }
  if (full < ncols) {
    Eigen::Map<Mat, 0, Eigen::OuterStride<>> St(S + full, R, ncols - full, Eigen::OuterStride<>(lds));
    St.noalias() =
        Eigen::Map<const Mat>(Qs, R, D) * Eigen::Map<const Mat>(K + full * D, ncols - full, D).transpose();
  }
}

}  // namespace entmax::detail
