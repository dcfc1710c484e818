// The attention operator's engine: blocks of query rows, scores materialised one block at a time
// (O(block × keys) memory), any Normalizer policy (plain or row-scaled), zero-skipping products,
// and a deterministic parallel schedule.
#pragma once

#include <entmax/detail/attention_blocks.hpp>
#include <entmax/detail/packed_keys.hpp>
#include <entmax/detail/parallel.hpp>
#include <entmax/normalizer.hpp>
#include <entmax/row_scaled.hpp>
#include <entmax/row_stats.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace entmax::detail {

/// A validated attention problem on raw row-major memory.
template <class T>
struct AttnProblem {
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  Index B = 0, H = 0, KH = 0, Nq = 0, Nk = 0, D = 0;
  T scale = T(1);
  bool causal = false;
  const std::int64_t* key_len = nullptr;  // [B] or null
  const bool* mask = nullptr;             // element (b, h, i, j) at b*mask_sb + h*mask_sh + i*Nk + j
  Index mask_sb = 0, mask_sh = 0;
  const T* bias = nullptr;  // same layout as mask
  Index bias_sb = 0, bias_sh = 0;
  const T* alibi = nullptr;                  // [H]
  const T* row_scale = nullptr;              // [B, H, Nq]
  const RowStats<T>* saved_stats = nullptr;  // [B, H, Nq] from the forward (backward only), or null
  unsigned threads = 1;
  Index block_rows = 0;

  Index kv_head(Index h) const { return h / (H / KH); }
  const T* q_rows(Index b, Index h, Index i) const { return q + ((b * H + h) * Nq + i) * D; }
  Index kv_offset(Index b, Index h) const { return (b * KH + kv_head(h)) * Nk * D; }
  std::size_t row_id(Index b, Index h, Index i) const {
    return static_cast<std::size_t>((b * H + h) * Nq + i);
  }

  /// Length of the key prefix query i of batch b may see (causal and key-length masks).
  Index visible_len(Index b, Index i) const {
    Index n = key_len ? static_cast<Index>(key_len[b]) : Nk;
    if (causal) n = std::min(n, std::max<Index>(0, i + Nk - Nq + 1));
    return n;
  }
  bool plain_scores() const { return !mask && !bias && !alibi; }
};

/// Turns the dot products s[0, n) of query row i (scale already folded into q) into scores
/// a = s + bias + alibi, with masked keys set to −inf (overwritten, so garbage from a masked K row
/// cannot survive). Returns the number of unmasked keys. A no-op without bias, alibi and mask.
template <class T>
Index transform_scores(const AttnProblem<T>& pr, Index b, Index h, Index i, T* s, Index n) {
  if (pr.plain_scores()) return n;
  const Index row_off = i * pr.Nk;
  const T* brow = pr.bias ? pr.bias + b * pr.bias_sb + h * pr.bias_sh + row_off : nullptr;
  const bool* mrow = pr.mask ? pr.mask + b * pr.mask_sb + h * pr.mask_sh + row_off : nullptr;
  if (brow)
    for (Index j = 0; j < n; ++j) s[j] += brow[j];
  if (pr.alibi) {
    const T slope = pr.alibi[h];
    const Index shift = i + pr.Nk - pr.Nq;
    for (Index j = 0; j < n; ++j) s[j] += slope * static_cast<T>(j - shift);
  }
  if (!mrow) return n;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  Index visible = 0;
  for (Index j = 0; j < n; ++j) {
    visible += mrow[j];
    s[j] = mrow[j] ? s[j] : ninf;
  }
  return visible;
}

/// Normalizes one row in place (z -> p) with a plain or row-scaled policy.
template <class T, class N>
RowStats<T> normalize_row(const N& norm, std::size_t row, Index visible, T* z, Index n) {
  const auto un = static_cast<std::size_t>(n);
  if constexpr (is_row_scaled_v<N>) {
    return row_scaled_forward(norm, row, static_cast<std::size_t>(visible) + 1, static_cast<const T*>(z), z,
                              un);
  } else {
    if (n == 0) return {-std::numeric_limits<T>::infinity(), T(0), 0};
    return norm.forward(static_cast<const T*>(z), z, un);
  }
}

/// Rebuilds one row in place (z -> p) from the RowStats the forward returned for it.
template <class T, class N>
void rebuild_row(const N& norm, std::size_t row, Index visible, T* z, Index n, const RowStats<T>& st) {
  const auto un = static_cast<std::size_t>(n);
  if constexpr (is_row_scaled_v<N>) {
    row_scaled_from_stats(norm, row, static_cast<std::size_t>(visible) + 1, static_cast<const T*>(z), st, z,
                          un);
  } else {
    if (n > 0) norm.from_stats(static_cast<const T*>(z), st, z, un);
  }
}

/// Optional per-row outputs of the forward, indexed by row id (null: not wanted).
template <class T>
struct RowRecords {
  std::int64_t* support = nullptr;  // [B, H, Nq] non-zeros per row
  RowStats<T>* stats = nullptr;     // [B, H, Nq] what the backward rebuilds p from
  void put(std::size_t row, const RowStats<T>& st) const {
    if (support) support[row] = static_cast<std::int64_t>(st.support);
    if (stats) stats[row] = st;
  }
};

template <class N>
constexpr bool policy_is_sparse() {
  if constexpr (is_row_scaled_v<N>) {
    return std::decay_t<decltype(std::declval<const N&>().base())>::is_sparse;
  } else {
    return N::is_sparse;
  }
}

/// Scratch of one block of rows.
template <class T>
struct BlockScratch {
  std::vector<T> a, p, g, zrow, qbuf;
  AlignedVector<T> bbuf;  // packed query block of packed_scores
  std::vector<T> pv, gv;  // gather plans of the backward: p and g in the plan's CSC order
  std::vector<T> lv;      // the listed values of p, at the positions of plan.idx
  std::vector<T> lg;      // backward of sparse blocks: the listed values of g
  std::vector<Index> visible;
  BlockPlan plan;
  void reserve(Index rows, Index cols, bool need_a, bool need_g) {
    const auto n = static_cast<std::size_t>(rows * cols);
    if (p.size() < n) p.resize(n);
    if (need_a && a.size() < n) a.resize(n);
    if (need_g && g.size() < n) g.resize(n);
    if (need_a && zrow.size() < static_cast<std::size_t>(cols)) zrow.resize(static_cast<std::size_t>(cols));
    plan.len.resize(static_cast<std::size_t>(rows));
    visible.resize(static_cast<std::size_t>(rows));
  }
};

/// K of every (batch, kv head) slice packed once for packed_scores (empty: not packed).
template <class T>
struct PackedK {
  AlignedVector<T> data;
  Index stride = 0;  // entries per slice, rounded up to 64 bytes (the packed panels are aligned)
  const T* slice(const AttnProblem<T>& pr, Index b, Index h) const {
    return data.empty() ? nullptr : data.data() + (b * pr.KH + pr.kv_head(h)) * stride;
  }
};

/// Packs K when the query blocks use GEMMs (two or more rows) and the keys fill at least one
/// chunk; parallel over slices.
template <class T>
void maybe_pack_keys(const AttnProblem<T>& pr, Index block_rows, PackedK<T>& pk) {
  if (std::min(block_rows, pr.Nq) < 2 || pr.Nk < min_packed_keys<T>() || pr.D == 0) return;
  constexpr Index align = 64 / static_cast<Index>(sizeof(T));
  pk.stride = (packed_size<T>(pr.Nk, pr.D) + align - 1) / align * align;
  pk.data.resize(static_cast<std::size_t>(pr.B * pr.KH * pk.stride));
  const auto slices = static_cast<std::size_t>(pr.B * pr.KH);
  parallel_for(slices, resolve_threads(pr.threads), [&](std::size_t s, std::size_t) {
    pack_keys(pr.k + static_cast<Index>(s) * pr.Nk * pr.D, pr.Nk, pr.D,
              pk.data.data() + static_cast<Index>(s) * pk.stride);
  });
}

/// dst (R × ncols, row stride ncols) = (scale · Q[r0, r0 + R)) · K[0, ncols)ᵀ for slice (b, h).
/// The scale is folded into a copy of the (small) query block; one row uses a GEMV. packed is the
/// slice's packed K or null.
template <class T>
void block_scores(const AttnProblem<T>& pr, Index b, Index h, Index r0, Index R, Index ncols, T* dst,
                  BlockScratch<T>& ws, const T* packed) {
  const Index D = pr.D;
  auto& qbuf = ws.qbuf;
  qbuf.resize(static_cast<std::size_t>(R * D));
  Eigen::Map<RowMat<T>> Qs(qbuf.data(), R, D);
  Qs.noalias() = pr.scale * Eigen::Map<const RowMat<T>>(pr.q_rows(b, h, r0), R, D);
  const T* K = pr.k + pr.kv_offset(b, h);
  Eigen::Map<const RowMat<T>> Kb(K, ncols, D);
  if (R == 1) {
    using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
    Eigen::Map<Vec>(dst, ncols).noalias() = Kb * Eigen::Map<const Vec>(qbuf.data(), D);
    return;
  }
  if (packed)
    return packed_scores(packed, K, ncols, D, static_cast<const T*>(qbuf.data()), R, dst, ncols, ws.bbuf);
  Eigen::Map<RowMat<T>> S(dst, R, ncols);
  S.noalias() = Qs * Kb.transpose();
}

/// Forward of rows [r0, r0 + R) of slice (b, h): writes R output rows and their records.
template <class T, class N>
void forward_block(const AttnProblem<T>& pr, const N& norm, Index b, Index h, Index r0, Index R,
                   BlockScratch<T>& ws, T* out, const RowRecords<T>& rec, const T* packed,
                   DeferredRows<T>* deferred = nullptr, Index out_row0 = 0) {
  const Index D = pr.D;
  Index ncols = 0;
  ws.reserve(R, 0, false, false);
  for (Index r = 0; r < R; ++r) {
    ws.plan.len[static_cast<std::size_t>(r)] = pr.visible_len(b, r0 + r);
    ncols = std::max(ncols, ws.plan.len[static_cast<std::size_t>(r)]);
  }
  ws.plan.rows = R;
  if (ncols == 0) {
    std::fill(out, out + R * D, T(0));
    for (Index r = 0; r < R; ++r)
      rec.put(pr.row_id(b, h, r0 + r), {-std::numeric_limits<T>::infinity(), T(0), 0});
    return;
  }
  ws.reserve(R, ncols, false, false);
  T* P = ws.p.data();
  block_scores(pr, b, h, r0, R, ncols, P, ws, packed);
  Index nnz = 0;
  // Sparse maps: list each row's non-zeros while it is hot, as long as rows stay sparse.
  bool listing = policy_is_sparse<N>();
  if (listing) {
    ws.plan.begin_lists(R, ncols);
    if (ws.lv.size() < ws.plan.idx.size()) ws.lv.resize(ws.plan.idx.size());
  }
  for (Index r = 0; r < R; ++r) {
    T* z = P + r * ncols;
    const Index n = ws.plan.len[static_cast<std::size_t>(r)];
    const Index vis = transform_scores(pr, b, h, r0 + r, z, n);
    if (pr.row_scale) {
      const T rs = pr.row_scale[pr.row_id(b, h, r0 + r)];
      for (Index j = 0; j < n; ++j) z[j] *= rs;
    }
    const RowStats<T> st = normalize_row(norm, pr.row_id(b, h, r0 + r), vis, z, n);
    nnz += static_cast<Index>(st.support);
    rec.put(pr.row_id(b, h, r0 + r), st);
    if (listing) {
      if (static_cast<double>(st.support) < gather_density * static_cast<double>(n))
        list_row(ws.plan, r, z, n, ws.lv.data());
      else
        listing = ws.plan.listed = false;
    }
  }
  const bool listed = ws.plan.listed;
  make_plan(P, ncols, ws.plan, !policy_is_sparse<N>() && pr.plain_scores(), nnz, false);
  if (deferred && listed && ws.plan.gather) {
    // Multiplied later with the task's other sparse blocks (the same sums in the same order).
    deferred->append(ws.plan, ws.lv.data(), out_row0);
    return;
  }
  block_product(ws.plan, P, ncols, pr.v + pr.kv_offset(b, h), D, out, listed ? ws.lv.data() : nullptr);
}

/// Query blocks per forward task: a task defers the product of its sparse blocks and multiplies
/// them together (K/V tiles reused by more rows), up to this many listed entries.
inline constexpr Index forward_task_blocks = 4;
inline constexpr Index deferred_max_entries = Index{1} << 20;

template <class T>
Index default_block_rows(const AttnProblem<T>& pr, bool backward) {
  if (pr.block_rows > 0) return pr.block_rows;
  return backward ? 32 : 64;
}

/// Forward over every (batch, head, query block); blocks are independent, so the result does not
/// depend on the number of threads.
/// Decoding shape: few queries against many keys. Then the key axis is split into fixed chunks
/// (scores, normalisation of whole rows, per-chunk partial products, then a sum of the partials
/// in chunk order), which parallelises over keys. The choice depends on shapes only.
inline constexpr Index decode_max_queries = 16;
inline constexpr Index decode_chunk = 4096;
template <class T>
bool use_split_keys(const AttnProblem<T>& pr) {
  return pr.Nq <= decode_max_queries && pr.Nk >= 2 * decode_chunk && pr.block_rows == 0;
}

template <class T, class N>
void run_forward_split_keys(const AttnProblem<T>& pr, const N& norm, T* out, const RowRecords<T>& rec) {
  const Index R = pr.Nq, D = pr.D, Nk = pr.Nk;
  const Index nchunks = (Nk + decode_chunk - 1) / decode_chunk;
  const Index slices = pr.B * pr.H;
  // Slices in groups whose score rows fit in about 32 MiB.
  const double row_bytes = static_cast<double>(R) * static_cast<double>(Nk) * sizeof(T);
  const Index group =
      std::max<Index>(1, std::min<Index>(slices, static_cast<Index>(32.0 * 1024 * 1024 / row_bytes)));
  const unsigned threads = resolve_threads(pr.threads);
  std::vector<T> S(static_cast<std::size_t>(group * R * Nk));
  std::vector<T> partial(static_cast<std::size_t>(group * nchunks * R * D));
  std::vector<std::vector<T>> qbufs(threads);
  std::vector<BlockPlan> plans(threads);
  auto slice_bh = [&](Index s, Index& b, Index& h) {
    b = s / pr.H;
    h = s % pr.H;
  };
  for (Index s0 = 0; s0 < slices; s0 += group) {
    const Index gs = std::min(group, slices - s0);
    // Scores, chunk by chunk: S_chunk = (scale · Q) K_chunkᵀ.
    parallel_for(static_cast<std::size_t>(gs * nchunks), threads, [&](std::size_t task, std::size_t w) {
      const Index sl = static_cast<Index>(task) / nchunks, c = static_cast<Index>(task) % nchunks;
      Index b, h;
      slice_bh(s0 + sl, b, h);
      const Index ncols = pr.visible_len(b, R - 1);
      const Index c0 = c * decode_chunk, c1 = std::min(ncols, c0 + decode_chunk);
      if (c0 >= c1) return;
      auto& qb = qbufs[w];
      qb.resize(static_cast<std::size_t>(R * D));
      Eigen::Map<RowMat<T>> Qs(qb.data(), R, D);
      Qs.noalias() = pr.scale * Eigen::Map<const RowMat<T>>(pr.q_rows(b, h, 0), R, D);
      Eigen::Map<const RowMat<T>> Kc(pr.k + pr.kv_offset(b, h) + c0 * D, c1 - c0, D);
      StridedMap<T> Sc(S.data() + sl * R * Nk + c0, R, c1 - c0, Eigen::OuterStride<>(Nk));
      if (R == 1) {
        using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
        Eigen::Map<Vec>(S.data() + sl * R * Nk + c0, c1 - c0).noalias() =
            Kc * Eigen::Map<const Vec>(qb.data(), D);
      } else {
        Sc.noalias() = Qs * Kc.transpose();
      }
    });
    // Whole rows through the normalizer.
    parallel_for(static_cast<std::size_t>(gs * R), threads, [&](std::size_t task, std::size_t) {
      const Index sl = static_cast<Index>(task) / R, i = static_cast<Index>(task) % R;
      Index b, h;
      slice_bh(s0 + sl, b, h);
      const Index n = pr.visible_len(b, i);
      T* z = S.data() + (sl * R + i) * Nk;
      const Index vis = transform_scores(pr, b, h, i, z, n);
      if (pr.row_scale) {
        const T rs = pr.row_scale[pr.row_id(b, h, i)];
        for (Index j = 0; j < n; ++j) z[j] *= rs;
      }
      rec.put(pr.row_id(b, h, i), normalize_row(norm, pr.row_id(b, h, i), vis, z, n));
    });
    // Partial products per chunk, zero-aware.
    parallel_for(static_cast<std::size_t>(gs * nchunks), threads, [&](std::size_t task, std::size_t w) {
      const Index sl = static_cast<Index>(task) / nchunks, c = static_cast<Index>(task) % nchunks;
      Index b, h;
      slice_bh(s0 + sl, b, h);
      const Index c0 = c * decode_chunk;
      BlockPlan& plan = plans[w];
      plan.rows = R;
      plan.len.resize(static_cast<std::size_t>(R));
      for (Index i = 0; i < R; ++i)
        plan.len[static_cast<std::size_t>(i)] = std::clamp<Index>(pr.visible_len(b, i) - c0, 0, decode_chunk);
      const T* Pc = S.data() + sl * R * Nk + c0;
      make_plan(Pc, Nk, plan, !policy_is_sparse<N>() && pr.plain_scores(),
                policy_is_sparse<N>() ? 0 : R * decode_chunk, false);
      block_product(plan, Pc, Nk, pr.v + pr.kv_offset(b, h) + c0 * D, D,
                    partial.data() + (sl * nchunks + c) * R * D);
    });
    // Sum of the partials in chunk order.
    parallel_for(static_cast<std::size_t>(gs), threads, [&](std::size_t task, std::size_t) {
      const Index sl = static_cast<Index>(task);
      Eigen::Map<RowMat<T>> O(out + (s0 + sl) * R * D, R, D);
      O.setZero();
      for (Index c = 0; c < nchunks; ++c)
        O += Eigen::Map<const RowMat<T>>(partial.data() + (sl * nchunks + c) * R * D, R, D);
    });
  }
}

template <class T, class N>
void run_forward(const AttnProblem<T>& pr, const N& norm, T* out, const RowRecords<T>& rec) {
  if (pr.B == 0 || pr.H == 0 || pr.Nq == 0) return;
  if (use_split_keys(pr)) return run_forward_split_keys(pr, norm, out, rec);
  const Index R = std::min(default_block_rows(pr, false), pr.Nq);
  // A task: up to forward_task_blocks consecutive blocks of R query rows of one slice.
  const Index TR = policy_is_sparse<N>() ? R * forward_task_blocks : R;
  const Index ntask = (pr.Nq + TR - 1) / TR;
  const auto tasks = static_cast<std::size_t>(pr.B * pr.H * ntask);
  const unsigned threads = resolve_threads(pr.threads);
  std::vector<BlockScratch<T>> scratch(std::min<std::size_t>(threads, tasks));
  std::vector<DeferredRows<T>> deferred(scratch.size());
  PackedK<T> pk;
  maybe_pack_keys(pr, R, pk);
  parallel_for(tasks, threads, [&](std::size_t task, std::size_t worker) {
    const Index t = static_cast<Index>(task);
    const Index bh = t / ntask, tk = t % ntask;
    const Index b = bh / pr.H, h = bh % pr.H;
    const Index t0 = tk * TR, t1 = std::min(pr.Nq, t0 + TR);
    const Index trow0 = (b * pr.H + h) * pr.Nq + t0;
    T* tout = out + trow0 * pr.D;
    const T* V = pr.v + pr.kv_offset(b, h);
    DeferredRows<T>& dr = deferred[worker];
    dr.clear();
    for (Index r0 = t0; r0 < t1; r0 += R) {
      const Index rows = std::min(R, t1 - r0);
      if (dr.plan.nnz >= deferred_max_entries) {
        dr.multiply(V, pr.D, tout);
        dr.clear();
      }
      forward_block(pr, norm, b, h, r0, rows, scratch[worker], tout + (r0 - t0) * pr.D, rec,
                    pk.slice(pr, b, h), &dr, r0 - t0);
    }
    if (dr.plan.rows > 0) dr.multiply(V, pr.D, tout);
  });
}

/// Outputs of the backward pass (raw memory, zero-initialised by the caller where noted).
template <class T>
struct BackwardOut {
  T* dq = nullptr;          // [B, H, Nq, D], fully written
  T* dk = nullptr;          // [B, KH, Nk, D], must be zero on entry
  T* dv = nullptr;          // [B, KH, Nk, D], must be zero on entry
  T* drow_scale = nullptr;  // [B, H, Nq] or null
};

/// Phase A of the backward for a block with a gather plan (plain policies): everything on the
/// compact row lists: p and g = dO·Vᵀ at the listed keys, the row backward on the support only
/// (zeros contribute nothing to its sums), dq, and p, g in CSC order for phase B.
template <class T, class N>
void backward_block_sparse(const AttnProblem<T>& pr, const N& norm, const T* dO, Index b, Index h, Index row0,
                           const T* A, BlockScratch<T>& ws, const BackwardOut<T>& res) {
  const BlockPlan& plan = ws.plan;
  const Index D = pr.D, ncols = plan.ncols;
  const auto nnz = static_cast<std::size_t>(plan.nnz);
  const T* P = ws.p.data();
  const std::uint32_t* idx = plan.idx.data();
  ws.lv.resize(nnz);
  ws.lg.resize(nnz);
  T* pl = ws.lv.data();
  T* gl = ws.lg.data();
  for (Index i = 0; i < plan.rows; ++i)
    for (Index t = plan.off[static_cast<std::size_t>(i)]; t < plan.off[static_cast<std::size_t>(i + 1)]; ++t)
      pl[t] = P[i * ncols + idx[t]];
  const T* V = pr.v + pr.kv_offset(b, h);
  for_each_tile(plan, gather_tile(plan), V, D, [&](Index i, Index t0, Index t1) {
    gather_row_dots_listed(idx + t0, t1 - t0, dO + i * D, V, D, gl + t0);
  });
  for (Index i = 0; i < plan.rows; ++i) {
    const Index t0 = plan.off[static_cast<std::size_t>(i)], t1 = plan.off[static_cast<std::size_t>(i + 1)];
    const auto n = static_cast<std::size_t>(t1 - t0);
    if (n > 0) norm.backward(pl + t0, gl + t0, gl + t0, n);
    const T rs = pr.row_scale ? pr.row_scale[row0 + i] : T(1);
    if (res.drow_scale) {
      ws.zrow.resize(std::max<std::size_t>(ws.zrow.size(), n));
      const T* a = A + i * ncols;
      for (Index t = t0; t < t1; ++t) ws.zrow[static_cast<std::size_t>(t - t0)] = a[idx[t]];
      res.drow_scale[row0 + i] = n > 0 ? masked_dot(static_cast<const T*>(gl + t0), ws.zrow.data(), n) : T(0);
    }
    const T f = pr.scale * rs;
    for (Index t = t0; t < t1; ++t) gl[t] *= f;  // dL/d(q·k)
  }
  // CSC copies for the key-ordered accumulation of dk, dv.
  ws.pv.resize(nnz);
  ws.gv.resize(nnz);
  for (std::size_t t = 0; t < nnz; ++t) {
    const auto at = static_cast<std::size_t>(plan.pos[t]);
    ws.pv[at] = pl[t];
    ws.gv[at] = gl[t];
  }
  block_product(plan, static_cast<const T*>(nullptr), 0, pr.k + pr.kv_offset(b, h), D, res.dq + row0 * D,
                static_cast<const T*>(gl));
}

/// Phase A of the backward for one block: recompute the scores and p (from the forward's saved
/// RowStats when given: one pass instead of a threshold search), then dp on the support, dz, dq rows.
/// Leaves p and g = dL/d(q·k) of the block in the scratch for phase B.
template <class T, class N>
void backward_block(const AttnProblem<T>& pr, const N& norm, const T* dout, Index b, Index h, Index r0,
                    Index R, BlockScratch<T>& ws, const BackwardOut<T>& res, const T* packed) {
  const Index D = pr.D;
  constexpr bool row_scaled = is_row_scaled_v<N>;
  const bool need_a = row_scaled || pr.row_scale;
  Index ncols = 0;
  ws.reserve(R, 0, false, false);
  for (Index r = 0; r < R; ++r) {
    ws.plan.len[static_cast<std::size_t>(r)] = pr.visible_len(b, r0 + r);
    ncols = std::max(ncols, ws.plan.len[static_cast<std::size_t>(r)]);
  }
  ws.plan.rows = R;
  ws.plan.ncols = ncols;
  const Index row0 = (b * pr.H + h) * pr.Nq + r0;
  if (ncols == 0) {
    std::fill(res.dq + row0 * D, res.dq + (row0 + R) * D, T(0));
    for (Index r = 0; r < R; ++r) {
      if (res.drow_scale) res.drow_scale[row0 + r] = T(0);
      if constexpr (row_scaled) norm.scale_backward(static_cast<std::size_t>(row0 + r), 1, T(0));
    }
    return;
  }
  ws.reserve(R, ncols, need_a, true);
  T* A = need_a ? ws.a.data() : ws.p.data();
  T* P = ws.p.data();
  T* G = ws.g.data();
  block_scores(pr, b, h, r0, R, ncols, A, ws, packed);
  Index nnz = 0;
  for (Index r = 0; r < R; ++r) {
    const Index n = ws.plan.len[static_cast<std::size_t>(r)];
    T* a = A + r * ncols;
    T* z = P + r * ncols;
    const Index vis = transform_scores(pr, b, h, r0 + r, a, n);
    ws.visible[static_cast<std::size_t>(r)] = vis;
    const T rs = pr.row_scale ? pr.row_scale[row0 + r] : T(1);
    if (need_a)
      for (Index j = 0; j < n; ++j) z[j] = rs * a[j];
    else if (pr.row_scale)
      for (Index j = 0; j < n; ++j) z[j] *= rs;
    const auto row = static_cast<std::size_t>(row0 + r);
    if (pr.saved_stats) {
      rebuild_row(norm, row, vis, z, n, pr.saved_stats[row]);
      nnz += static_cast<Index>(pr.saved_stats[row].support);  // a hint for the plan only
    } else {
      nnz += static_cast<Index>(normalize_row(norm, row, vis, z, n).support);
    }
  }
  make_plan(P, ncols, ws.plan, !policy_is_sparse<N>() && pr.plain_scores(), nnz);
  const T* dO = dout + row0 * D;
  if constexpr (!row_scaled) {
    if (ws.plan.gather) return backward_block_sparse(pr, norm, dO, b, h, row0, A, ws, res);
  }
  block_sampled(ws.plan, P, ncols, dO, pr.v + pr.kv_offset(b, h), D, G, ncols);
  for (Index r = 0; r < R; ++r) {
    const Index n = ws.plan.len[static_cast<std::size_t>(r)];
    const auto un = static_cast<std::size_t>(n);
    const T* p = P + r * ncols;
    T* g = G + r * ncols;
    const T rs = pr.row_scale ? pr.row_scale[row0 + r] : T(1);
    const std::size_t row = static_cast<std::size_t>(row0 + r);
    if constexpr (row_scaled) {
      // z = rs · a, the input of the row-scaled policy.
      const T* a = A + r * ncols;
      const T* z = a;
      if (pr.row_scale) {
        for (Index j = 0; j < n; ++j) ws.zrow[static_cast<std::size_t>(j)] = rs * a[j];
        z = ws.zrow.data();
      }
      row_scaled_backward(norm, row, static_cast<std::size_t>(ws.visible[static_cast<std::size_t>(r)]) + 1, z,
                          p, g, g, un);
    } else {
      if (n > 0) norm.backward(p, g, g, un);
    }
    if (res.drow_scale)
      res.drow_scale[row] = n > 0 ? masked_dot(static_cast<const T*>(g), A + r * ncols, un) : T(0);
    const T f = pr.scale * rs;
    for (Index j = 0; j < n; ++j) g[j] *= f;  // dL/d(q·k)
  }
  if (ws.plan.gather) {
    gather_values(ws.plan, static_cast<const T*>(P), ncols, ws.pv);
    gather_values(ws.plan, static_cast<const T*>(G), ncols, ws.gv);
  }
  block_product(ws.plan, G, ncols, pr.k + pr.kv_offset(b, h), D, res.dq + row0 * D);
}

/// Backward over all blocks. Blocks run in waves: phase A (parallel over the wave's blocks)
/// computes p, g and dq; phase B (parallel over fixed key ranges of each K/V slice) adds the
/// wave's contributions to dk and dv block by block in a fixed order. Every floating-point sum
/// therefore has the same order for any thread count.
template <class T, class N>
void run_backward(const AttnProblem<T>& pr, const N& norm, const T* dout, const BackwardOut<T>& res) {
  if (pr.B == 0 || pr.H == 0 || pr.Nq == 0) return;
  const Index R = std::min(default_block_rows(pr, true), pr.Nq);
  const Index nblk = (pr.Nq + R - 1) / R;
  const Index group = pr.H / pr.KH;
  // Blocks ordered slice-major: (b, kv head, head in group, query block).
  const Index total = pr.B * pr.H * nblk;
  const unsigned threads = resolve_threads(pr.threads);
  const bool need_a = is_row_scaled_v<N> || pr.row_scale;
  const double slot_bytes =
      static_cast<double>(R) * static_cast<double>(pr.Nk) * sizeof(T) * (need_a ? 3 : 2);
  const double budget = 48.0 * 1024 * 1024;
  Index wave = std::max<Index>(1, std::min<Index>(2 * static_cast<Index>(threads),
                                                  static_cast<Index>(budget / std::max(1.0, slot_bytes))));
  wave = std::min(wave, total);
  std::vector<BlockScratch<T>> slots(static_cast<std::size_t>(wave));
  PackedK<T> pk;
  maybe_pack_keys(pr, R, pk);
  struct Item {
    Index b, h, r0, rows;
  };
  auto item_of = [&](Index t) {
    const Index blk = t % nblk;
    const Index rest = t / nblk;
    const Index hg = rest % group;
    const Index bk = rest / group;  // b * KH + kvh
    const Index b = bk / pr.KH, kvh = bk % pr.KH;
    const Index r0 = blk * R;
    return Item{b, kvh * group + hg, r0, std::min(R, pr.Nq - r0)};
  };
  const Index blocks_per_slice = group * nblk;
  constexpr Index key_range = 256;
  const Index nranges = (pr.Nk + key_range - 1) / key_range;
  for (Index w0 = 0; w0 < total; w0 += wave) {
    const Index w1 = std::min(total, w0 + wave);
    parallel_for(static_cast<std::size_t>(w1 - w0), threads, [&](std::size_t s, std::size_t) {
      const Item it = item_of(w0 + static_cast<Index>(s));
      backward_block(pr, norm, dout, it.b, it.h, it.r0, it.rows, slots[s], res, pk.slice(pr, it.b, it.h));
    });
    if (nranges == 0) continue;
    const Index slice0 = w0 / blocks_per_slice, slice1 = (w1 - 1) / blocks_per_slice + 1;
    const auto btasks = static_cast<std::size_t>((slice1 - slice0) * nranges);
    parallel_for(btasks, threads, [&](std::size_t task, std::size_t) {
      const Index slice = slice0 + static_cast<Index>(task) / nranges;
      const Index c0 = (static_cast<Index>(task) % nranges) * key_range, c1 = std::min(pr.Nk, c0 + key_range);
      const Index t0 = std::max(w0, slice * blocks_per_slice),
                  t1 = std::min(w1, (slice + 1) * blocks_per_slice);
      for (Index t = t0; t < t1; ++t) {
        const BlockScratch<T>& ws = slots[static_cast<std::size_t>(t - w0)];
        if (ws.plan.ncols == 0) continue;
        const Item it = item_of(t);
        const Index row0 = (it.b * pr.H + it.h) * pr.Nq + it.r0;
        const Index kvoff = pr.kv_offset(it.b, it.h);
        block_transpose_acc(ws.plan, ws.g.data(), ws.plan.ncols, ws.gv.data(), pr.q + row0 * pr.D, pr.D,
                            res.dk + kvoff, c0, c1);
        block_transpose_acc(ws.plan, ws.p.data(), ws.plan.ncols, ws.pv.data(), dout + row0 * pr.D, pr.D,
                            res.dv + kvoff, c0, c1);
      }
    });
  }
}

}  // namespace entmax::detail
