// The one parallel-for of the C++ cores, used by the return kernels and the
// vector envs: a fixed pool of worker threads that, with the calling thread,
// runs body(item) for every item in [0, n_items).
//
// Callers split their work into items whose results do not depend on which
// thread runs them (columns of a [T, N] array, blocks of envs), so every
// result is bit-identical for any thread count.
//
// Thread counts: a request above kMaxThreadRequest is an error (the bindings
// raise ValueError); below it, a pool never gets more than max_pool_threads()
// (4x the hardware threads) and, when the OS refuses a thread, keeps the ones
// that started (at worst the caller alone): a spawn failure never aborts,
// hangs or changes a result.
//
// This header sees no Python.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace pgfast {

// The largest num_threads any kernel or env accepts.
constexpr int64_t kMaxThreadRequest = 1024;

// std::thread::hardware_concurrency(), read once: glibc reads /sys on every call
// (several microseconds, as much as a small GAE), and every kernel call asks.
inline unsigned hardware_threads() {
  static const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return hw;
}

// The most threads (caller included) one pool runs: 4x the hardware threads.
inline int max_pool_threads() {
  return int(std::min<int64_t>(kMaxThreadRequest, 4 * int64_t(hardware_threads())));
}

// Each thread owns a contiguous lane of items and takes them from an atomic
// counter; a thread that is done takes the rest of the others' lanes, so a
// worker the OS has not scheduled yet never holds up a job (the caller simply
// does more items). Between back-to-back jobs workers spin ~50 us before
// sleeping, so a job does not pay a futex wake-up per thread. One caller at a
// time: run() is not reentrant.
class WorkerPool {
 public:
  // Up to num_workers threads (at most max_pool_threads() - 1): if the OS
  // refuses one (std::system_error, or no memory for its stack), the pool
  // keeps those that started; size() tells how many run.
  explicit WorkerPool(int num_workers) {
    num_workers = std::max(0, std::min(num_workers, max_pool_threads() - 1));
    lanes_.reset(new Lane[size_t(num_workers) + 1]);
    threads_.reserve(size_t(num_workers));
    for (int w = 0; w < num_workers; ++w) {
      try {
        threads_.emplace_back([this, w] { loop(w + 1); });
      } catch (const std::system_error&) {
        break;
      } catch (const std::bad_alloc&) {
        break;
      }
    }
  }
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Threads that take part in a job: the workers and the caller.
  int size() const { return int(threads_.size()) + 1; }
  // Items run by the worker threads so far (not by the caller): lets tests
  // check that the threaded path really ran.
  int64_t items_by_workers() const { return worker_items_.load(std::memory_order_relaxed); }

  // body(item) for every item in [0, n_items) on at most `threads` threads (the
  // caller and workers 1 .. threads - 1; <= 0 or above size(): all of them).
  void run(int64_t n_items, const std::function<void(int64_t)>& body, int threads = 0) {
    if (n_items <= 0) return;
    const int lanes = threads <= 0 ? size() : std::min(threads, size());
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &body;
      n_items_ = n_items;
      job_lanes_ = lanes;
      const int64_t per = (n_items + lanes - 1) / lanes;
      for (int l = 0; l < lanes; ++l) {
        lanes_[l].next.store(std::min(n_items, l * per), std::memory_order_relaxed);
        lanes_[l].end = std::min(n_items, (l + 1) * per);
      }
      done_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    work(body, n_items, 0, lanes);
    if (!spin_until([&] { return done_.load(std::memory_order_acquire) == n_items; })) {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return done_.load(std::memory_order_acquire) == n_items; });
    }
    {
      // Late workers find no job; those already in it have no items left.
      std::lock_guard<std::mutex> lk(mu_);
      job_ = nullptr;
    }
    while (active_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  static void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  // Spins up to ~50 us for pred(); returns whether it became true.
  template <class Pred>
  static bool spin_until(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (;;) {
      for (int k = 0; k < 32; ++k) {
        if (pred()) return true;
        cpu_relax();
      }
      if (std::chrono::steady_clock::now() > deadline) return pred();
    }
  }

  // Runs items until none are left, first from its own lane (the same items
  // every job, so their data stays in this core's cache), then from the
  // others'; returns how many it ran.
  int64_t work(const std::function<void(int64_t)>& body, int64_t n_items, int lane, int lanes) {
    int64_t ran = 0;
    for (int j = 0; j < lanes; ++j) {
      Lane& l = lanes_[(lane + j) % lanes];
      for (;;) {
        const int64_t i = l.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= l.end) break;
        body(i);
        ++ran;
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_items) {
          std::lock_guard<std::mutex> lk(mu_);
          done_cv_.notify_one();
        }
      }
    }
    return ran;
  }

  void loop(int lane) {
    uint64_t seen = 0;
    for (;;) {
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      const std::function<void(int64_t)>* job;
      int64_t n;
      int lanes;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        lanes = job_lanes_;
        job = lane < lanes ? job_ : nullptr;  // a job on fewer threads leaves this one out
        n = n_items_;
        if (job != nullptr) active_.fetch_add(1, std::memory_order_acq_rel);
      }
      if (job != nullptr) {
        worker_items_.fetch_add(work(*job, n, lane, lanes), std::memory_order_relaxed);
        active_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* job_ = nullptr;  // guarded by mu_
  int64_t n_items_ = 0;                                 // guarded by mu_
  int job_lanes_ = 1;                                   // threads of the job; guarded by mu_
  bool stop_ = false;                                   // guarded by mu_
  // Items [start, end) of a lane, start advanced by whoever takes one.
  struct alignas(64) Lane {
    std::atomic<int64_t> next{0};
    int64_t end = 0;  // written under mu_ before the job is published
  };
  std::unique_ptr<Lane[]> lanes_;
  std::atomic<int64_t> done_{0};
  std::atomic<int> active_{0};
  std::atomic<int64_t> worker_items_{0};
  std::atomic<uint64_t> generation_{0};
};

// body(item) for every item in [0, n_items): on the calling thread alone when
// pool is null, threads is 1 or there is a single item, else across the pool
// (at most `threads` threads, caller included; <= 0: the whole pool).
template <class Body>
void parallel_for(WorkerPool* pool, int64_t n_items, Body&& body, int threads = 0) {
  if (pool == nullptr || n_items <= 1 || threads == 1) {
    for (int64_t i = 0; i < n_items; ++i) body(i);
    return;
  }
  // std::ref: the std::function holds a reference, no copy or allocation.
  pool->run(n_items, std::function<void(int64_t)>(std::ref(body)), threads);
}

// The process-wide pool for callers that own none (the return kernels), held
// for the lifetime of a lease. One lease at a time: a caller that finds the
// pool in use (another Python thread computing returns with the GIL
// released) gets no pool and runs on its own thread, with the same results.
class SharedPoolLease {
 public:
  // A pool of `threads` threads (caller included; at most max_pool_threads(),
  // fewer where the OS refused some); none for 1.
  explicit SharedPoolLease(int threads);
  ~SharedPoolLease();
  SharedPoolLease(const SharedPoolLease&) = delete;
  SharedPoolLease& operator=(const SharedPoolLease&) = delete;

  WorkerPool* pool() const { return pool_; }
  // Threads a job of this lease should use (caller included): the count asked
  // for, at most the pool's size; 1 without a pool.
  int threads() const { return threads_; }

 private:
  bool locked_ = false;
  int threads_ = 1;
  WorkerPool* pool_ = nullptr;
};

// Items the shared pool's worker threads (not its callers) have run since it was
// started: lets tests check that a threaded path really ran.
int64_t shared_pool_items_by_workers();

}  // namespace pgfast
