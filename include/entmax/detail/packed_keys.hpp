// Scores S = Qs · Kᵀ of many query blocks against the same keys, with K packed once.
//
// An Eigen product packs both operands on every call; for a 64-row query block against N keys
// that is a (transposing) copy of all of K per block, 10–15 % of the attention forward. Here K is
// packed once per (batch, kv head) slice into Eigen's GEBP panel layout, in fixed chunks of keys,
// and each block only packs its small query block and runs Eigen's GEBP micro-kernel. The chunks
// are packed independently, so a key prefix made of whole chunks is a valid packed operand.
// Uses Eigen 3.4's internal GEBP interface (gebp_traits, gemm_pack_lhs/rhs, gebp_kernel).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

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

/// Packs the N × D row-major keys K into dst (N · D entries, aligned to 64 bytes) chunk by chunk.
/// Every chunk starts at a multiple of the SIMD width (the chunk has a multiple of mr rows).
template <class T>
void pack_keys(const T* K, std::ptrdiff_t N, std::ptrdiff_t D, T* dst) {
  using KP = KeyPacking<T>;
  typename KP::PackLhs pack;
  for (std::ptrdiff_t c0 = 0; c0 < N; c0 += KP::chunk) {
    const std::ptrdiff_t rows = std::min(KP::chunk, N - c0);
    pack(dst + c0 * D, typename KP::LhsMapper(K + c0 * D, D), D, rows);
  }
}

/// S (R × ncols, row stride lds) = Qs (R × D, row-major) · K[0, ncols)ᵀ, with the whole chunks of
/// [0, ncols) taken from packedK (pack_keys of K) and the rest from K by an Eigen product.
/// bbuf is scratch for the packed query block.
template <class T>
void packed_scores(const T* packedK, const T* K, std::ptrdiff_t ncols, std::ptrdiff_t D, const T* Qs,
                   std::ptrdiff_t R, T* S, std::ptrdiff_t lds, AlignedVector<T>& bbuf) {
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
