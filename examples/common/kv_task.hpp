// Key-value retrieval: n (key, value) items and a query key; the answer is the value stored
// under that key. The query key occurs exactly once; the other n - 1 keys are drawn, with
// repetition, from the remaining keys, so every length from 1 to millions is well posed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace example {

/// A batch of equal-length retrieval problems, row-major [batch][items].
struct KvBatch {
  std::size_t batch = 0;
  std::size_t items = 0;
  std::vector<int> keys;                // batch * items
  std::vector<int> values;              // batch * items
  std::vector<int> query;               // batch: the key asked for
  std::vector<int> target;              // batch: the value stored under it
  std::vector<std::size_t> target_pos;  // batch: the item holding it
};

/// Uniform integer in [0, n) from a 64-bit generator (portable: no std distribution).
inline std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
  // modulo bias is at most n / 2^64: irrelevant here
  return static_cast<std::size_t>(rng() % n);
}

/// Draws `batch` problems of `items` items over `num_keys` keys and `num_values` values.
inline KvBatch make_kv_batch(std::mt19937_64& rng, std::size_t batch, std::size_t items, int num_keys,
                             int num_values) {
  KvBatch b;
  b.batch = batch;
  b.items = items;
  b.keys.resize(batch * items);
  b.values.resize(batch * items);
  b.query.resize(batch);
  b.target.resize(batch);
  b.target_pos.resize(batch);
  const auto nk = static_cast<std::size_t>(num_keys);
  const auto nv = static_cast<std::size_t>(num_values);
  for (std::size_t s = 0; s < batch; ++s) {
    const int q = static_cast<int>(uniform_index(rng, nk));
    const std::size_t pos = uniform_index(rng, items);
    for (std::size_t j = 0; j < items; ++j) {
      int k = q;
      if (j != pos) {
        // any key but q
        k = static_cast<int>(uniform_index(rng, nk - 1));
        if (k >= q) ++k;
      }
      b.keys[s * items + j] = k;
      b.values[s * items + j] = static_cast<int>(uniform_index(rng, nv));
    }
    b.query[s] = q;
    b.target[s] = b.values[s * items + pos];
    b.target_pos[s] = pos;
  }
  return b;
}

}  // namespace example
