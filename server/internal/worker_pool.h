// A bounded worker pool for the service's blocking work (image decoding, the face pipeline,
// searches, SQLite). Tasks beyond the in-flight limits are refused, never queued without
// bound: the caller answers UNAVAILABLE.
//
// THREAD SAFETY: TrySubmit may be called from any thread. The destructor runs every accepted
// task, then joins the threads.
#ifndef HOMEWARD_SERVER_INTERNAL_WORKER_POOL_H_
#define HOMEWARD_SERVER_INTERNAL_WORKER_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace homeward::server::internal {

class WorkerPool {
 public:
  // `max_heavy` / `max_light`: tasks of each class accepted and not yet finished.
  WorkerPool(int threads, int max_heavy, int max_light)
      : max_heavy_(max_heavy), max_light_(max_light) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~WorkerPool() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Accepts `fn` unless its class is at its limit or the pool is stopping.
  bool TrySubmit(bool heavy, std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    int& in_flight = heavy ? heavy_in_flight_ : light_in_flight_;
    if (stopping_ || in_flight >= (heavy ? max_heavy_ : max_light_)) return false;
    ++in_flight;
    queue_.push_back(Task{heavy, std::move(fn)});
    return true;
  }

  int heavy_in_flight() const {
    absl::MutexLock lock(&mu_);
    return heavy_in_flight_;
  }

 private:
  struct Task {
    bool heavy;
    std::function<void()> fn;
  };

  void Loop() {
    for (;;) {
      Task task;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
              return p->stopping_ || !p->queue_.empty();
            },
            this));
        if (queue_.empty()) return;  // stopping and drained
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task.fn();
      absl::MutexLock lock(&mu_);
      --(task.heavy ? heavy_in_flight_ : light_in_flight_);
    }
  }

  const int max_heavy_, max_light_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  int heavy_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int light_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_WORKER_POOL_H_
