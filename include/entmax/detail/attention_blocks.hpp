// Block products of the attention operator that skip exact zeros: a block of R score rows, row i
// valid on the key prefix [0, len_i), is multiplied with a [keys, D] matrix either by per-row
// gathers over the non-zeros (sparse blocks) or by Eigen GEMMs over the runs of key columns that
// are non-zero in some row of the block (dense blocks). Columns that are zero in every row of a
// block are never read, so neither are the K/V rows behind them.
#pragma once

#include <entmax/detail/compress.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

namespace entmax::detail {

using Index = std::ptrdiff_t;

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using RowVec = Eigen::Matrix<T, 1, Eigen::Dynamic>;
template <class T>
using StridedMap = Eigen::Map<RowMat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using CStridedMap = Eigen::Map<const RowMat<T>, 0, Eigen::OuterStride<>>;

/// Where the non-zeros of a block of rows are, and how to multiply with it.
struct BlockPlan {
  Index rows = 0;
  Index common = 0;  // min_i len_i: the key prefix every row of the block sees
  Index ncols = 0;   // max_i len_i
  Index nnz = 0;
  bool gather = false;
  std::vector<Index> len;                     // per row
  std::vector<unsigned char> active;          // per column of [0, common): non-zero in some row
  std::vector<std::pair<Index, Index>> runs;  // [begin, end) runs of active columns in [0, common)
  std::vector<std::uint32_t> idx;             // gather: non-zero columns of every row, ascending
  std::vector<Index> off;                     // gather: row i's columns are idx[off[i] .. off[i+1])
  std::vector<Index> col_off;                 // gather: column j's rows are col_row[col_off[j] ..)
  std::vector<std::uint32_t> col_row;         //   (ascending), built from the row lists
  std::vector<Index> pos;                     // gather: CSC position of row-list entry t
  std::vector<std::uint32_t> nz_cols;         // gather: the columns with some non-zero, ascending
  bool listed = false;                        // idx/off already hold every row's non-zeros

  /// Starts per-row lists (filled row by row with list_row while the rows are hot in cache).
  void begin_lists(Index R, Index cols) {
    off.resize(static_cast<std::size_t>(R + 1));
    off[0] = 0;
    if (idx.size() < static_cast<std::size_t>(R * cols) + list_nonzero_slack)
      idx.resize(static_cast<std::size_t>(R * cols) + list_nonzero_slack);
    listed = true;
  }
};

/// A block is multiplied by gathers when its non-zeros are fewer than this fraction of the
/// (rows × active columns) a GEMM would touch: a gathered non-zero costs a few times a GEMM one.
inline constexpr double gather_density = 0.25;

/// Builds the plan of the R × ncols block P (row stride ldp); row i is read on [0, plan.len[i]).
/// nnz_hint is the number of non-zeros the normalizer reported (Σ support). With dense_all (a
/// dense map with no mask or bias) every visible column is taken as active without scanning.
/// Lists row r's non-zeros (p[0, n)) after those of rows < r; with vals (sized like plan.idx),
/// also their values at the same positions.
template <class T>
void list_row(BlockPlan& plan, Index r, const T* p, Index n, T* vals = nullptr) {
  const auto k = static_cast<std::size_t>(plan.off[static_cast<std::size_t>(r)]);
  plan.off[static_cast<std::size_t>(r + 1)] =
      static_cast<Index>(k + list_nonzero(p, n, plan.idx.data() + k, vals ? vals + k : nullptr));
}

/// Column-major copy of the row lists: per key column, the rows holding a non-zero, ascending.
inline void build_columns(BlockPlan& plan) {
  const Index R = plan.rows, C = plan.ncols;
  plan.col_off.assign(static_cast<std::size_t>(C + 1), 0);
  plan.col_row.resize(static_cast<std::size_t>(plan.nnz));
  plan.pos.resize(static_cast<std::size_t>(plan.nnz));
  Index* co = plan.col_off.data();
  for (Index t = 0; t < plan.nnz; ++t) ++co[plan.idx[static_cast<std::size_t>(t)] + 1];
  for (Index j = 0; j < C; ++j) co[j + 1] += co[j];
  for (Index i = 0; i < R; ++i)
    for (Index t = plan.off[static_cast<std::size_t>(i)]; t < plan.off[static_cast<std::size_t>(i + 1)];
         ++t) {
      const Index at = co[plan.idx[static_cast<std::size_t>(t)]]++;
      plan.col_row[static_cast<std::size_t>(at)] = static_cast<std::uint32_t>(i);
      plan.pos[static_cast<std::size_t>(t)] = at;
    }
  for (Index j = C; j > 0; --j) co[j] = co[j - 1];
  co[0] = 0;
  plan.nz_cols.clear();
  for (Index j = 0; j < C; ++j)
    if (co[j + 1] > co[j]) plan.nz_cols.push_back(static_cast<std::uint32_t>(j));
}

/// Prefetches the D-entry row x (ahead of its use in a gather loop).
template <class T>
inline void prefetch_row(const T* x, Index D) {
#if defined(__GNUC__)
  const char* c = reinterpret_cast<const char*>(x);
  for (Index b = 0; b < D * static_cast<Index>(sizeof(T)); b += 64) __builtin_prefetch(c + b);
#else
  (void)x, (void)D;
#endif
}

/// How many non-empty columns ahead the gather loops prefetch the next rows of K or V.
inline constexpr std::size_t prefetch_distance = 4;

/// y[0, D) += a · x[0, D).
template <class T>
inline void axpy(T a, const T* x, T* y, Index D) {
  for (Index d = 0; d < D; ++d) y[d] += a * x[d];
}

template <class T>
inline T dot(const T* x, const T* y, Index D) {
  T s = T(0);
  for (Index d = 0; d < D; ++d) s += x[d] * y[d];
  return s;
}

/// o[0, W) += Σ_t a_t · M[ix[t]][d0, d0 + W) (t ascending) with the W sums in registers, where
/// a_t = vt[t] (values listed with the indices) or a[ix[t]] when vt is null.
template <class T, Index W>
inline void gather_rows_fixed(const std::uint32_t* ix, Index n, const T* a, const T* vt, const T* M, Index D,
                              Index d0, T* o) {
  T acc[static_cast<std::size_t>(W)];
  for (Index d = 0; d < W; ++d) acc[d] = o[d];
  for (Index t = 0; t < n; ++t) {
    if (t + static_cast<Index>(prefetch_distance) < n)
      prefetch_row(M + ix[t + static_cast<Index>(prefetch_distance)] * D + d0, W);
    const T s = vt ? vt[t] : a[ix[t]];
    const T* m = M + ix[t] * D + d0;
    for (Index d = 0; d < W; ++d) acc[d] += s * m[d];
  }
  for (Index d = 0; d < W; ++d) o[d] = acc[d];
}

/// out (D entries) += Σ_t a_t · M[ix[t]] over listed columns of one row, ascending (a_t as in
/// gather_rows_fixed).
template <class T>
void gather_row_product(const std::uint32_t* ix, Index n, const T* a, const T* vt, const T* M, Index D,
                        T* out) {
  constexpr Index W = 64;
  Index d0 = 0;
  for (; d0 + W <= D; d0 += W) gather_rows_fixed<T, W>(ix, n, a, vt, M, D, d0, out + d0);
  if (d0 < D)
    for (Index t = 0; t < n; ++t) axpy(vt ? vt[t] : a[ix[t]], M + ix[t] * D + d0, out + d0, D - d0);
}

/// Key tile of the sparse products: about 16 non-zeros per row and tile, so the K/V rows of a
/// tile are reused across the block's rows while they are in cache. The whole row when sparser.
inline Index gather_tile(const BlockPlan& plan) {
  const double cells = static_cast<double>(plan.rows) * static_cast<double>(plan.ncols);
  if (plan.nnz <= 0) return plan.ncols;
  const double keys = 16.0 * cells / static_cast<double>(plan.nnz);
  if (keys >= static_cast<double>(plan.ncols)) return plan.ncols;
  return std::max<Index>(128, (static_cast<Index>(keys) + 63) / 64 * 64);
}

/// Calls fn(i, t0, t1) for the list entries [t0, t1) of row i that fall in each key tile: tiles
/// in ascending order, rows ascending within a tile (so every row still sees its keys in order).
/// While a tile is processed, the rows of the next tile of M ([keys, D]) are prefetched into L2
/// when most of them are used (on average at least one non-zero per key column).
template <class T, class F>
void for_each_tile(const BlockPlan& plan, Index tile, const T* M, Index D, F&& fn) {
  const Index R = plan.rows;
  const Index* off = plan.off.data();
  if (tile >= plan.ncols) {
    for (Index i = 0; i < R; ++i)
      if (off[i + 1] > off[i]) fn(i, off[i], off[i + 1]);
    return;
  }
  thread_local std::vector<Index> cur;
  cur.assign(off, off + R);
  const std::uint32_t* idx = plan.idx.data();
  const bool prefetch = plan.nnz >= plan.ncols;
  for (Index k1 = tile;; k1 += tile) {
    const bool last = k1 >= plan.ncols;
#if defined(__GNUC__)
    if (prefetch && !last) {
      const char* b = reinterpret_cast<const char*>(M + k1 * D);
      const char* e = reinterpret_cast<const char*>(M + std::min(k1 + tile, plan.ncols) * D);
      for (; b < e; b += 64) __builtin_prefetch(b, 0, 2);
    }
#endif
    for (Index i = 0; i < R; ++i) {
      const Index t = cur[static_cast<std::size_t>(i)], e = off[i + 1];
      Index t1 = e;
      if (!last) {
        t1 = t;
        while (t1 < e && static_cast<Index>(idx[t1]) < k1) ++t1;
      }
      if (t1 > t) fn(i, t, t1);
      cur[static_cast<std::size_t>(i)] = t1;
    }
    if (last) break;
  }
}

/// gl[t] = x · M[ix[t]] for the listed columns of one row (in list order).
template <class T>
void gather_row_dots_listed(const std::uint32_t* ix, Index n, const T* x, const T* M, Index D, T* gl) {
  for (Index t = 0; t < n; ++t) {
    if (t + static_cast<Index>(prefetch_distance) < n)
      prefetch_row(M + ix[t + static_cast<Index>(prefetch_distance)] * D, D);
    gl[t] = dot(x, M + ix[t] * D, D);
  }
}

/// g[ix[t]] = x · M[ix[t]] for the listed columns of one row.
template <class T>
void gather_row_dots(const std::uint32_t* ix, Index n, const T* x, const T* M, Index D, T* g) {
  for (Index t = 0; t < n; ++t) {
    if (t + static_cast<Index>(prefetch_distance) < n)
      prefetch_row(M + ix[t + static_cast<Index>(prefetch_distance)] * D, D);
    g[ix[t]] = dot(x, M + ix[t] * D, D);
  }
}

/// vals (CSC order) = the plan's non-zero entries of A, read row by row (cache-friendly).
template <class T>
void gather_values(const BlockPlan& plan, const T* A, Index lda, std::vector<T>& vals) {
  vals.resize(static_cast<std::size_t>(plan.nnz));
  for (Index i = 0; i < plan.rows; ++i) {
    const T* a = A + i * lda;
    for (Index t = plan.off[static_cast<std::size_t>(i)]; t < plan.off[static_cast<std::size_t>(i + 1)]; ++t)
      vals[static_cast<std::size_t>(plan.pos[static_cast<std::size_t>(t)])] =
          a[plan.idx[static_cast<std::size_t>(t)]];
  }
}

template <class T>
void make_plan(const T* P, Index ldp, BlockPlan& plan, bool dense_all, Index nnz_hint,
               bool need_columns = true) {
  const Index R = plan.rows;
  plan.common = R ? *std::min_element(plan.len.begin(), plan.len.begin() + R) : 0;
  plan.ncols = R ? *std::max_element(plan.len.begin(), plan.len.begin() + R) : 0;
  plan.runs.clear();
  plan.gather = false;
  Index cells = 0;
  for (Index i = 0; i < R; ++i) cells += plan.len[static_cast<std::size_t>(i)];
  if (dense_all) {
    plan.nnz = cells;
    if (plan.common > 0) plan.runs.emplace_back(0, plan.common);
    return;
  }
  if (plan.listed) {
    plan.listed = false;
    plan.nnz = plan.off[static_cast<std::size_t>(R)];
    if (static_cast<double>(plan.nnz) < gather_density * static_cast<double>(cells)) {
      plan.gather = true;
      if (need_columns) build_columns(plan);
      return;
    }
  } else if (static_cast<double>(nnz_hint) < gather_density * static_cast<double>(cells)) {
    // Sparse block: per-row lists of non-zero columns (a NaN row lists its NaNs).
    plan.off.resize(static_cast<std::size_t>(R + 1));
    std::size_t k = 0;
    for (Index i = 0; i < R; ++i) {
      plan.off[static_cast<std::size_t>(i)] = static_cast<Index>(k);
      const Index n = plan.len[static_cast<std::size_t>(i)];
      if (plan.idx.size() < k + static_cast<std::size_t>(n) + list_nonzero_slack)
        plan.idx.resize(k + static_cast<std::size_t>(n) + list_nonzero_slack);
      k += list_nonzero(P + i * ldp, n, plan.idx.data() + k);
    }
    plan.off[static_cast<std::size_t>(R)] = static_cast<Index>(k);
    plan.nnz = static_cast<Index>(k);
    if (static_cast<double>(k) < gather_density * static_cast<double>(cells)) {
      plan.gather = true;
      if (need_columns) build_columns(plan);
      return;
    }
  }
  // Dense block: GEMMs over the runs of columns that are non-zero in some row.
  const Index common = plan.common;
  plan.active.assign(static_cast<std::size_t>(common), 0);
  unsigned char* act = plan.active.data();
  for (Index i = 0; i < R; ++i) {
    const T* p = P + i * ldp;
    for (Index j = 0; j < common; ++j) act[j] = static_cast<unsigned char>(act[j] | (p[j] != T(0)));
  }
  for (Index j = 0; j < common;) {
    if (!act[j]) {
      ++j;
      continue;
    }
    Index e = j + 1;
    while (e < common && act[e]) ++e;
    plan.runs.emplace_back(j, e);
    j = e;
  }
}

/// out (R × D, row stride D) = A · M, where A (row stride lda) has the non-zero pattern of the
/// plan (a subset of it is fine) and M is [keys, D] row-major. For a gather plan, lvals may hold
/// A's listed values at the positions of plan.idx (list_row with values).
template <class T>
void block_product(const BlockPlan& plan, const T* A, Index lda, const T* M, Index D, T* out,
                   const T* lvals = nullptr) {
  const Index R = plan.rows;
  using CVec = Eigen::Map<const RowVec<T>>;
  using Vec = Eigen::Map<RowVec<T>>;
  if (plan.gather) {
    // Row by row within key tiles: each output row is accumulated in registers over its keys,
    // ascending.
    std::fill(out, out + R * D, T(0));
    const std::uint32_t* idx = plan.idx.data();
    for_each_tile(plan, gather_tile(plan), M, D, [&](Index i, Index t0, Index t1) {
      gather_row_product(idx + t0, t1 - t0, A + i * lda, lvals ? lvals + t0 : nullptr, M, D, out + i * D);
    });
    return;
  }
  StridedMap<T> O(out, R, D, Eigen::OuterStride<>(D));
  O.setZero();
  CStridedMap<T> Am(A, R, plan.ncols, Eigen::OuterStride<>(lda));
  Eigen::Map<const RowMat<T>> Mm(M, plan.ncols, D);
  for (const auto& run : plan.runs) {
    const Index c = run.first, n = run.second - run.first;
    O.noalias() += Am.middleCols(c, n) * Mm.middleRows(c, n);
  }
  for (Index i = 0; i < R; ++i) {
    Vec o(out + i * D, D);
    const T* a = A + i * lda;
    for (Index j = plan.common; j < plan.len[static_cast<std::size_t>(i)]; ++j)
      if (a[j] != T(0)) o.noalias() += a[j] * CVec(M + j * D, D);
  }
}

/// Sparse rows whose product is deferred: the row lists (indices and values) of several blocks
/// of a task, multiplied together so that each key tile of M is reused by more rows.
template <class T>
struct DeferredRows {
  BlockPlan plan;  // rows, ncols, nnz, off, idx
  std::vector<T> vals;
  std::vector<Index> out_row;  // output row (relative to the task's first row) of each list row
  void clear() {
    plan.rows = plan.ncols = plan.nnz = 0;
    plan.off.assign(1, 0);
    plan.idx.clear();
    vals.clear();
    out_row.clear();
  }
  /// Appends the listed rows of a gather plan p (values lv at the positions of p.idx), the first
  /// being output row row0.
  void append(const BlockPlan& p, const T* lv, Index row0) {
    const auto t0 = static_cast<std::size_t>(p.off[0]),
               t1 = static_cast<std::size_t>(p.off[static_cast<std::size_t>(p.rows)]);
    const Index base = plan.nnz - p.off[0];
    plan.idx.insert(plan.idx.end(), p.idx.begin() + static_cast<std::ptrdiff_t>(t0),
                    p.idx.begin() + static_cast<std::ptrdiff_t>(t1));
    vals.insert(vals.end(), lv + t0, lv + t1);
    for (Index r = 0; r < p.rows; ++r) {
      plan.off.push_back(base + p.off[static_cast<std::size_t>(r + 1)]);
      out_row.push_back(row0 + r);
    }
    plan.rows += p.rows;
    plan.ncols = std::max(plan.ncols, p.ncols);
    plan.nnz += static_cast<Index>(t1 - t0);
  }
  /// out rows (D entries each, relative to out) = the deferred rows times M ([keys, D]).
  void multiply(const T* M, Index D, T* out) const {
    for (Index i = 0; i < plan.rows; ++i) {
      T* o = out + out_row[static_cast<std::size_t>(i)] * D;
      std::fill(o, o + D, T(0));
    }
    const std::uint32_t* idx = plan.idx.data();
    for_each_tile(plan, gather_tile(plan), M, D, [&](Index i, Index t0, Index t1) {
      gather_row_product(idx + t0, t1 - t0, static_cast<const T*>(nullptr), vals.data() + t0, M, D,
                         out + out_row[static_cast<std::size_t>(i)] * D);
    });
  }
};

/// G (R × ·, row stride ldg): G_ij = X_i · M_j where P_ij != 0 (j < len_i), and 0 elsewhere on
/// [0, len_i). X is R × D (row stride D), M is [keys, D].
template <class T>
void block_sampled(const BlockPlan& plan, const T* P, Index ldp, const T* X, const T* M, Index D, T* G,
                   Index ldg) {
  const Index R = plan.rows;
  using CVec = Eigen::Map<const RowVec<T>>;
  if (plan.gather) {
    for (Index i = 0; i < R; ++i)
      std::fill(G + i * ldg, G + i * ldg + plan.len[static_cast<std::size_t>(i)], T(0));
    const std::uint32_t* idx = plan.idx.data();
    for_each_tile(plan, gather_tile(plan), M, D, [&](Index i, Index t0, Index t1) {
      gather_row_dots(idx + t0, t1 - t0, X + i * D, M, D, G + i * ldg);
    });
    return;
  }
  StridedMap<T> Gm(G, R, plan.ncols, Eigen::OuterStride<>(ldg));
  Eigen::Map<const RowMat<T>> Xm(X, R, D);
  Eigen::Map<const RowMat<T>> Mm(M, plan.ncols, D);
  Index prev = 0;
  for (const auto& run : plan.runs) {
    if (run.first > prev) Gm.middleCols(prev, run.first - prev).setZero();
    const Index c = run.first, n = run.second - run.first;
    Gm.middleCols(c, n).noalias() = Xm * Mm.middleRows(c, n).transpose();
    prev = run.second;
  }
  if (plan.common > prev) Gm.middleCols(prev, plan.common - prev).setZero();
  for (Index i = 0; i < R; ++i) {
    T* g = G + i * ldg;
    const T* p = P + i * ldp;
    for (Index j = 0; j < plan.common; ++j)
      if (p[j] == T(0)) g[j] = T(0);
    CVec x(X + i * D, D);
    for (Index j = plan.common; j < plan.len[static_cast<std::size_t>(i)]; ++j)
      g[j] = p[j] != T(0) ? x.dot(CVec(M + j * D, D)) : T(0);
  }
}

/// Macc[j] += Σ_i A_ij X_i for the key columns j in [c0, c1), rows in increasing order. A has the
/// plan's non-zero pattern (or a subset); X is R × D (row stride D); Macc is [keys, D]. For a
/// gather plan, vals must hold A's entries in the plan's CSC order (gather_values).
template <class T>
void block_transpose_acc(const BlockPlan& plan, const T* A, Index lda, const T* vals, const T* X, Index D,
                         T* Macc, Index c0, Index c1) {
  const Index R = plan.rows;
  using CVec = Eigen::Map<const RowVec<T>>;
  using Vec = Eigen::Map<RowVec<T>>;
  c1 = std::min(c1, plan.ncols);
  if (c0 >= c1) return;
  if (plan.gather) {
    const auto b = std::lower_bound(plan.nz_cols.begin(), plan.nz_cols.end(), static_cast<std::uint32_t>(c0));
    const auto e = std::lower_bound(b, plan.nz_cols.end(), static_cast<std::uint32_t>(c1));
    for (auto it = b; it != e; ++it) {
      const Index j = *it;
      T* m = Macc + j * D;
      for (Index t = plan.col_off[static_cast<std::size_t>(j)];
           t < plan.col_off[static_cast<std::size_t>(j + 1)]; ++t) {
        const Index i = plan.col_row[static_cast<std::size_t>(t)];
        const T a = vals[t];
        if (a != T(0)) axpy(a, X + i * D, m, D);
      }
    }
    return;
  }
  CStridedMap<T> Am(A, R, plan.ncols, Eigen::OuterStride<>(lda));
  Eigen::Map<const RowMat<T>> Xm(X, R, D);
  Eigen::Map<RowMat<T>> Mm(Macc, plan.ncols, D);
  for (const auto& run : plan.runs) {
    const Index c = std::max(run.first, c0), e = std::min(run.second, c1);
    if (c >= e) continue;
    Mm.middleRows(c, e - c).noalias() += Am.middleCols(c, e - c).transpose() * Xm;
  }
  const Index t0 = std::max(plan.common, c0);
  for (Index i = 0; i < R; ++i) {
    const T* a = A + i * lda;
    CVec x(X + i * D, D);
    const Index e = std::min(plan.len[static_cast<std::size_t>(i)], c1);
    for (Index j = t0; j < e; ++j)
      if (a[j] != T(0)) Vec(Macc + j * D, D).noalias() += a[j] * x;
  }
}

}  // namespace entmax::detail
