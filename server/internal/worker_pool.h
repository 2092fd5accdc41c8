// A bounded worker pool for the service's blocking work (image decoding, the face pipeline,
// searches, SQLite). Tasks beyond the in-flight limits are refused, never queued without
// bound: the caller answers UNAVAILABLE.
//
// Pipeline tasks (heavy tasks that borrow one of the face pipeline's workers) run at most
// `max_pipeline_running` at a time; a free thread passes over the queued ones and takes the
// oldest other task. So threads never sit waiting for a pipeline worker while cheap calls
// queue behind them (docs/reliability/load.md).
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
  // `max_heavy` / `max_light`: tasks of each class accepted and not yet finished (pipeline
  // tasks count as heavy). `max_pipeline_running`: pipeline tasks running at once; 0 = any.
  WorkerPool(int threads, int max_heavy, int max_light, int max_pipeline_running = 0)
      : max_heavy_(max_heavy), max_light_(max_light), max_pipeline_running_(max_pipeline_running) {
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

  // Accepts `fn` unless its class is at its limit or the pool is stopping. A `pipeline` task
  // is heavy.
  bool TrySubmit(bool heavy, std::function<void()> fn, bool pipeline = false) {
    heavy = heavy || pipeline;
    absl::MutexLock lock(&mu_);
    int& in_flight = heavy ? heavy_in_flight_ : light_in_flight_;
    if (stopping_ || in_flight >= (heavy ? max_heavy_ : max_light_)) return false;
    ++in_flight;
    queue_.push_back(Task{heavy, pipeline, std::move(fn)});
    return true;
  }

  int heavy_in_flight() const {
    absl::MutexLock lock(&mu_);
    return heavy_in_flight_;
  }

  // A snapshot for the metrics page.
  struct Load {
    int queued = 0, heavy_in_flight = 0, light_in_flight = 0, pipeline_running = 0;
  };
  Load load() const {
    absl::MutexLock lock(&mu_);
    return Load{static_cast<int>(queue_.size()), heavy_in_flight_, light_in_flight_,
                pipeline_running_};
  }

 private:
  struct Task {
    bool heavy = false, pipeline = false;
    std::function<void()> fn;
  };

  // The oldest task a free thread may start now, or queue_.end().
  std::deque<Task>::iterator NextRunnable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool pipeline_full =
        max_pipeline_running_ > 0 && pipeline_running_ >= max_pipeline_running_;
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (!it->pipeline || !pipeline_full) return it;
    }
    return queue_.end();
  }

  void Loop() {
    for (;;) {
      Task task;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](WorkerPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
              return (p->stopping_ && p->queue_.empty()) || p->NextRunnable() != p->queue_.end();
            },
            this));
        auto it = NextRunnable();
        if (it == queue_.end()) return;  // stopping and drained
        task = std::move(*it);
        queue_.erase(it);
        pipeline_running_ += task.pipeline;
      }
      task.fn();
      absl::MutexLock lock(&mu_);
      --(task.heavy ? heavy_in_flight_ : light_in_flight_);
      pipeline_running_ -= task.pipeline;
    }
  }

  const int max_heavy_, max_light_, max_pipeline_running_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  int heavy_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int light_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int pipeline_running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_WORKER_POOL_H_
