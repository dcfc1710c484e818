// A minimal fork-join parallel_for on std::thread: no global state, no pool that outlives a call.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace entmax::detail {

/// 0 means "all hardware threads"; the result is always >= 1.
inline unsigned resolve_threads(unsigned requested) {
  if (requested != 0) return requested;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1u : hw;
}

/// Calls fn(task, worker) for every task in [0, n) on min(threads, n) workers; the calling thread
/// is worker 0 and the others are std::threads joined before returning. Tasks are handed out
/// dynamically in increasing order, so a task's result must not depend on which worker runs it
/// (workers own scratch memory only). The first exception thrown by a task is rethrown here after
/// every worker has stopped.
template <class F>
void parallel_for(std::size_t n, unsigned threads, F&& fn) {
  if (n == 0) return;
  const std::size_t workers = std::min<std::size_t>(threads == 0 ? 1 : threads, n);
  if (workers <= 1) {
    for (std::size_t t = 0; t < n; ++t) fn(t, std::size_t{0});
    return;
  }
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&](std::size_t worker) {
    try {
      for (;;) {
        if (failed.load(std::memory_order_relaxed)) return;
        const std::size_t t = next.fetch_add(1, std::memory_order_relaxed);
        if (t >= n) return;
        fn(t, worker);
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      failed.store(true);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (std::size_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace entmax::detail
