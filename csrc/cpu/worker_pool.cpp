// The worker threads of parallel_for (parallel.h): started on demand, then kept for the life of the process,
// each waiting for the next task. A thread started per call (as before) begins on a fresh stack, whose pages
// glibc gives back to the OS when the thread exits: every call then faulted its workers' stack pages in again,
// each a zeroed 2 MiB transparent huge page (4% of a W1 4:2:0 call's perf samples were the kernel zeroing
// them, Intel Sapphire Rapids guest).
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define NNJPEG_HAS_ATFORK 1
#endif

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "parallel.h"

namespace nnjpeg {
namespace cpu {
namespace {

class WorkerPool {
 public:
  WorkerPool() {
#if defined(NNJPEG_HAS_ATFORK)
    pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                   [] { instance().forget_in_child(); });
#endif
  }

  static WorkerPool& instance() {
    static WorkerPool* pool = new WorkerPool();  // never destroyed: its threads wait until the process ends
    return *pool;
  }

  // Queues `task` for an idle worker, and starts a worker when the queue holds more tasks than there are
  // idle workers to take them, so that no task waits behind another.
  void post(std::function<void()> task) {
    bool start;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
      start = idle_ + starting_ < int64_t(tasks_.size());
      if (start) ++starting_;
    }
    if (start) std::thread([this] { serve(); }).detach();
    else wake_.notify_one();
  }

 private:
  void serve() {
    std::unique_lock<std::mutex> lock(mutex_);
    --starting_;
    for (;;) {
      ++idle_;
      wake_.wait(lock, [this] { return !tasks_.empty(); });
      --idle_;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      task = nullptr;  // drops what the task holds before the wait
      lock.lock();
    }
  }

  // In a forked child (one thread, the mutex held by the prepare handler): no worker exists. The parent's
  // queued tasks (copies of its callers' work) are left alone, neither run nor destroyed.
  void forget_in_child() {
    new std::deque<std::function<void()>>(std::move(tasks_));  // leaked on purpose
    tasks_.clear();
    idle_ = 0;
    starting_ = 0;
    mutex_.unlock();
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  int64_t idle_ = 0, starting_ = 0;  // workers waiting for a task; workers started but not yet waiting
};

}  // namespace

void run_on_worker(std::function<void()> task) { WorkerPool::instance().post(std::move(task)); }

}  // namespace cpu
}  // namespace nnjpeg
