#include "parallel.hpp"

#ifdef _WIN32
#include <process.h>
#define PGFAST_GETPID _getpid
#else
#include <unistd.h>
#define PGFAST_GETPID getpid
#endif

namespace pgfast {
namespace {

std::mutex g_mu;
// Never deleted at exit: its workers sleep until the process ends. Replaced
// (the old one joined) when a caller asks for more threads than it has.
WorkerPool* g_pool = nullptr;  // guarded by g_mu
long g_pool_pid = 0;           // the process that started g_pool's threads
// Threads asked of the pool when the OS last refused some (0: never): a
// request that large is not tried again, so a refusal costs once, not per call.
int g_refused_at = 0;  // guarded by g_mu

}  // namespace

SharedPoolLease::SharedPoolLease(int threads) {
  if (threads <= 1 || !g_mu.try_lock()) return;
  locked_ = true;
  const long pid = long(PGFAST_GETPID());
  if (g_pool != nullptr && g_pool_pid != pid) {
    // A forked child inherits the pool but not its threads: abandon it.
    g_pool = nullptr;
  }
  threads = std::min(threads, max_pool_threads());
  const bool refused_before = g_refused_at != 0 && threads >= g_refused_at;
  if (g_pool == nullptr || (g_pool->size() < threads && !refused_before)) {
    delete g_pool;
    g_pool = nullptr;
    try {
      g_pool = new WorkerPool(threads - 1);
    } catch (const std::bad_alloc&) {
      g_refused_at = threads;
      return;  // no pool: the caller runs every item
    }
    if (g_pool->size() < threads) g_refused_at = threads;
    g_pool_pid = pid;
  }
  pool_ = g_pool;
  threads_ = std::min(threads, pool_->size());
  if (threads_ <= 1) pool_ = nullptr;
}

SharedPoolLease::~SharedPoolLease() {
  if (locked_) g_mu.unlock();
}

int64_t shared_pool_items_by_workers() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_pool != nullptr ? g_pool->items_by_workers() : 0;
}

}  // namespace pgfast
