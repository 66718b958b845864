// A cache of large CPU output buffers, so that a loop calling the round trip without out= writes into
// memory it already touched instead of fresh pages (used by python/nnjpeg_cuda/cpu_cache.py).
//
// Why. A result of 32 MiB and more is a fresh mapping for every call (glibc maps large blocks anew and
// unmaps them on free), and the OS zeroes its pages at their first touch: on the 2-core guest that cost as
// much as the kernel (W1 float32, 154 MB: 27 ms into a reused buffer, 46 ms into a fresh one, even with the
// pages populated up front by output_pages.h; a fresh torch.empty_like(x).fill_(1) takes 57 ms). The
// cache keeps the blocks of freed results, by size, up to a byte limit, and hands one back to the next
// result of that size, as PyTorch's CUDA caching allocator does for device memory. The blocks are
// 2 MiB-aligned and advised for huge pages.
//
// Thread-safe; after fork() the child starts with an empty cache (the parent's blocks stay mapped in it,
// copy-on-write, and are never handed out twice).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace nnjpeg {
namespace cpu {

struct OutputCacheStats {
  int64_t cached_bytes;  // held by the cache, not in use
  int64_t limit_bytes;   // most the cache holds; 0: caching off (every block is unmapped when freed)
  int64_t hits;          // acquisitions served from the cache
  int64_t misses;        // acquisitions that mapped new memory
};

// Smallest buffer worth caching: below this glibc reuses its own heap.
constexpr int64_t kCachedMinBytes = int64_t(4) << 20;

// A block of at least `bytes` bytes (rounded up to 2 MiB), 2 MiB-aligned, contents undefined; from the
// cache when it holds one of that rounded size. Throws std::bad_alloc when the memory cannot be mapped.
void* output_cache_acquire(int64_t bytes, int64_t* block_bytes);
// Gives a block from output_cache_acquire back (block_bytes as returned): cached while within the limit
// (the oldest cached blocks are unmapped to make room), unmapped otherwise.
void output_cache_release(void* block, int64_t block_bytes);
// Unmaps every cached block.
void output_cache_empty();
// Sets the limit (bytes >= 0; 0 turns caching off) and trims the cache to it.
void output_cache_set_limit(int64_t bytes);
OutputCacheStats output_cache_stats();

}  // namespace cpu
}  // namespace nnjpeg
