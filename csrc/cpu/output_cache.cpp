// The CPU output cache (output_cache.h): cached blocks in release order, the oldest evicted first.
#include "output_cache.h"

#include <stdlib.h>
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#define NNJPEG_HAS_MMAP 1
#endif

#include <list>
#include <mutex>
#include <new>

#include "output_pages.h"

namespace nnjpeg {
namespace cpu {
namespace {

constexpr int64_t kAlignBytes = int64_t(kHugePageBytes);
constexpr int64_t kDefaultLimitBytes = int64_t(2) << 30;

struct Block {
  void* base;
  int64_t bytes;
};

int64_t round_up(int64_t bytes) { return (bytes + kAlignBytes - 1) / kAlignBytes * kAlignBytes; }

// NNJPEG_CPU_CACHE_MB when set (0 turns the cache off), else 2 GiB or an eighth of the memory if less.
int64_t default_limit() {
  if (const char* env = getenv("NNJPEG_CPU_CACHE_MB")) {
    char* end = nullptr;
    const long long mb = strtoll(env, &end, 10);
    if (end != env && *end == '\0' && mb >= 0) return int64_t(mb) << 20;
  }
  int64_t limit = kDefaultLimitBytes;
#if defined(NNJPEG_HAS_MMAP) && defined(_SC_PHYS_PAGES)
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && int64_t(pages) * page / 8 < limit) limit = int64_t(pages) * page / 8;
#endif
  return limit;
}

// A new 2 MiB-aligned mapping of `bytes` (a multiple of 2 MiB): map 2 MiB more and unmap the ends.
void* map_block(int64_t bytes) {
#if defined(NNJPEG_HAS_MMAP)
  const size_t total = size_t(bytes + kAlignBytes);
  void* raw = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + uintptr_t(kAlignBytes) - 1) & ~uintptr_t(kAlignBytes - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t tail = start + total - (aligned + uintptr_t(bytes));
  if (tail > 0) munmap(reinterpret_cast<void*>(aligned + uintptr_t(bytes)), tail);
  void* block = reinterpret_cast<void*>(aligned);
  advise_huge_pages(block, bytes);
  return block;
#else
  return ::operator new(size_t(bytes), std::align_val_t(kAlignBytes));
#endif
}

void unmap_block(const Block& b) {
#if defined(NNJPEG_HAS_MMAP)
  munmap(b.base, size_t(b.bytes));
#else
  ::operator delete(b.base, std::align_val_t(kAlignBytes));
#endif
}

class OutputCache {
 public:
  OutputCache() : limit_(default_limit()) {
#if defined(NNJPEG_HAS_MMAP)
    pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                   [] { instance().forget_in_child(); });
#endif
  }

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache();  // never destroyed: results may be freed at exit
    return *cache;
  }

  void* acquire(int64_t bytes, int64_t* block_bytes) {
    const int64_t rounded = round_up(bytes < 1 ? 1 : bytes);
    *block_bytes = rounded;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto it = blocks_.end(); it != blocks_.begin();) {  // the most recently released first
        --it;
        if (it->bytes == rounded) {
          void* base = it->base;
          cached_ -= it->bytes;
          blocks_.erase(it);
          ++hits_;
          return base;
        }
      }
      ++misses_;
    }
    return map_block(rounded);
  }

  void release(void* base, int64_t bytes) {
    std::list<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (bytes <= limit_) {
        trim_locked(limit_ - bytes, &evicted);
        blocks_.push_back(Block{base, bytes});
        cached_ += bytes;
      } else {
        evicted.push_back(Block{base, bytes});
      }
    }
    for (const Block& b : evicted) unmap_block(b);  // outside the lock: munmap of a large block takes a while
  }

  // Sets the limit (a negative one keeps it) and trims the cache to `keep` bytes, at most the limit.
  void set_limit_and_trim(int64_t limit, int64_t keep) {
    std::list<Block> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (limit >= 0) limit_ = limit;
      trim_locked(keep < limit_ ? keep : limit_, &evicted);
    }
    for (const Block& b : evicted) unmap_block(b);
  }

  OutputCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return OutputCacheStats{cached_, limit_, hits_, misses_};
  }

 private:
  // Moves the oldest blocks to *evicted until at most `keep` bytes stay cached.
  void trim_locked(int64_t keep, std::list<Block>* evicted) {
    while (cached_ > keep && !blocks_.empty()) {
      cached_ -= blocks_.front().bytes;
      evicted->splice(evicted->end(), blocks_, blocks_.begin());
    }
  }

  // In a forked child (one thread, the mutex held by the prepare handler): the blocks are forgotten, not
  // unmapped, so that a result the child inherited still points at mapped memory.
  void forget_in_child() {
    blocks_.clear();
    cached_ = 0;
    mutex_.unlock();
  }

  std::mutex mutex_;
  std::list<Block> blocks_;  // oldest first
  int64_t cached_ = 0, limit_, hits_ = 0, misses_ = 0;
};

}  // namespace

void* output_cache_acquire(int64_t bytes, int64_t* block_bytes) {
  return OutputCache::instance().acquire(bytes, block_bytes);
}
void output_cache_release(void* block, int64_t block_bytes) { OutputCache::instance().release(block, block_bytes); }
void output_cache_empty() { OutputCache::instance().set_limit_and_trim(-1, 0); }
void output_cache_set_limit(int64_t bytes) { OutputCache::instance().set_limit_and_trim(bytes, bytes); }
OutputCacheStats output_cache_stats() { return OutputCache::instance().stats(); }

}  // namespace cpu
}  // namespace nnjpeg
