#include "worker_threads.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace hermes3 {
namespace {

// A thread idle this long ends (one of them stays), so a burst of work leaves no crowd behind.
constexpr auto kIdleEnd = std::chrono::seconds(30);

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
    std::unique_lock<std::mutex> lock(pool.mutex);
    for (;;) {
        while (pool.tasks.empty()) {
            pool.idle++;
            const bool woken = pool.cv.wait_for(lock, kIdleEnd, [&]() { return !pool.tasks.empty(); });
            pool.idle--;
            if (!woken && pool.threads > 1) {
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
    bool start;
    {
        std::lock_guard<std::mutex> lock(pool.mutex);
        start = (int) pool.tasks.size() >= pool.idle;  // every idle thread already has a task waiting
        if (start) pool.threads++;
    }
    if (start) {
        try {
            std::thread([&pool]() { Loop(pool); }).detach();
        } catch (...) {
            std::lock_guard<std::mutex> lock(pool.mutex);
            pool.threads--;
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
