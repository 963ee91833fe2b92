#include "worker_threads.h"

#include "priority.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace hermes3 {
namespace {

// Four threads start with the first task and stay, as libuv's pool does; more start when all are
// busy, and each of those ends once idle this long, so a burst of work leaves no crowd behind.
constexpr int kKeep = 4;
constexpr auto kIdleEnd = std::chrono::seconds(10);

struct Pool {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<std::function<void()>> tasks;
    int threads = 0;
    int idle = 0;
};

// Never destroyed: its threads may still wait on it while the process exits.
Pool & ThePool() {
    static Pool * pool = new Pool();
    return *pool;
}

void Loop(Pool & pool) {
    NameThisThread("hermes3-worker");
    BatchThisThread();
    std::unique_lock<std::mutex> lock(pool.mutex);
    for (;;) {
        while (pool.tasks.empty()) {
            pool.idle++;
            const bool woken = pool.cv.wait_for(lock, kIdleEnd, [&]() { return !pool.tasks.empty(); });
            pool.idle--;
            if (!woken && pool.threads > kKeep) {
                pool.threads--;
                return;
            }
        }
        std::function<void()> task = std::move(pool.tasks.front());
        pool.tasks.pop_front();
        lock.unlock();
        task();
        task = nullptr;  // what it holds is let go of here, not under the lock
        lock.lock();
    }
}

}  // namespace

void RunOnWorkerThread(std::function<void()> task) {
    Pool & pool = ThePool();
    int start;
    {
        std::lock_guard<std::mutex> lock(pool.mutex);
        // the first kKeep threads, or one more when every idle thread already has a task waiting
        start = std::max(kKeep - pool.threads, (int) pool.tasks.size() >= pool.idle ? 1 : 0);
        pool.threads += start;
    }
    for (; start > 0; start--) {
        try {
            std::thread([&pool]() { Loop(pool); }).detach();
        } catch (...) {
            std::lock_guard<std::mutex> lock(pool.mutex);
            pool.threads -= start;
            if (pool.threads > 0) break;  // the threads there are will take the task
            throw;
        }
    }
    {
        std::lock_guard<std::mutex> lock(pool.mutex);
        pool.tasks.push_back(std::move(task));
    }
    pool.cv.notify_one();  // after the lock is let go: the woken thread does not wait for it
}

}  // namespace hermes3
