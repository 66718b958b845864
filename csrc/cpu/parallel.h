// A minimal parallel-for over an index range. Results never depend on the thread count or on which thread
// runs an item: each item is computed by exactly one thread, independently.
//
// Items are handed out in chunks from a shared counter, and the calling thread works too. The caller waits
// only for chunks a worker has taken, never for a worker to start: on a busy machine (data-loader
// processes, other jobs) a worker the OS schedules late finds nothing left and goes back to waiting, instead
// of holding the call up for a scheduler time slice (measured: a 128-image CIFAR batch took 4x longer with 2
// threads than with 1 on a loaded 2-core machine when each thread owned a fixed half). The workers are kept
// between calls (worker_pool.cpp).
#pragma once

#include <stdint.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

namespace nnjpeg {
namespace cpu {

// Runs `task` on a worker thread of the process (worker_pool.cpp): an idle one, or one started for it.
void run_on_worker(std::function<void()> task);

// Below this many items per thread a single thread is faster than starting workers (items of a few blocks;
// callers whose items are large, e.g. whole images, pass a smaller minimum).
constexpr int64_t kMinItemsPerThread = 16;

template <typename F>
void parallel_for(int64_t items, int num_threads, const F& body, int64_t min_items_per_thread = kMinItemsPerThread) {
  int64_t threads = num_threads < 1 ? 1 : num_threads;
  if (threads > items / min_items_per_thread) threads = items / min_items_per_thread;
  if (threads <= 1) {
    for (int64_t i = 0; i < items; ++i) body(i);
    return;
  }
  // Shared with the (detached) workers, which may outlive this call; `body` is only used for items taken
  // before the last one is done, i.e. while this call still waits.
  struct State {
    std::atomic<int64_t> next{0}, done{0};
    int64_t items = 0, chunk = 1;
    const F* body = nullptr;
    std::mutex mutex;
    std::condition_variable all_done;
  };
  auto state = std::make_shared<State>();
  state->items = items;
  state->chunk = items / (threads * 8) > 1 ? items / (threads * 8) : 1;
  state->body = &body;
  auto work = [](State& s) {
    for (;;) {
      const int64_t begin = s.next.fetch_add(s.chunk);
      if (begin >= s.items) return;
      const int64_t end = begin + s.chunk < s.items ? begin + s.chunk : s.items;
      for (int64_t i = begin; i < end; ++i) (*s.body)(i);
      if (s.done.fetch_add(end - begin) + (end - begin) == s.items) {
        std::lock_guard<std::mutex> lock(s.mutex);
        s.all_done.notify_all();
      }
    }
  };
  for (int64_t t = 1; t < threads; ++t) run_on_worker([state, work] { work(*state); });
  work(*state);
  std::unique_lock<std::mutex> lock(state->mutex);
  state->all_done.wait(lock, [&] { return state->done.load() == items; });
}

// Runs body(share) for share in [0, shares), each share one coarse task (e.g. a contiguous part of a memory
// range per thread), on up to `shares` threads; a thread that starts late finds the shares taken.
template <typename F>
void parallel_shares(int shares, const F& body) {
  parallel_for(shares, shares, [&](int64_t share) { body(int(share)); }, 1);
}

}  // namespace cpu
}  // namespace nnjpeg
