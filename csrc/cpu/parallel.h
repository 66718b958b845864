// A minimal parallel-for over an index range: contiguous chunks, one per thread, so results never
// depend on the thread count (each item is computed by exactly one thread, independently).
#pragma once

#include <stdint.h>

#include <thread>
#include <vector>

namespace nnjpeg {
namespace cpu {

// Below this many items a single thread is faster than starting workers.
constexpr int64_t kMinItemsPerThread = 16;

template <typename F>
void parallel_for(int64_t items, int num_threads, const F& body) {
  int64_t threads = num_threads < 1 ? 1 : num_threads;
  if (threads > items / kMinItemsPerThread) threads = items / kMinItemsPerThread;
  if (threads <= 1) {
    for (int64_t i = 0; i < items; ++i) body(i);
    return;
  }
  const int64_t chunk = (items + threads - 1) / threads;
  auto run = [&](int64_t t) {
    const int64_t begin = t * chunk, end = begin + chunk < items ? begin + chunk : items;
    for (int64_t i = begin; i < end; ++i) body(i);
  };
  std::vector<std::thread> workers;
  workers.reserve(size_t(threads - 1));
  for (int64_t t = 1; t < threads; ++t) workers.emplace_back(run, t);
  run(0);
  for (auto& w : workers) w.join();
}

}  // namespace cpu
}  // namespace nnjpeg
