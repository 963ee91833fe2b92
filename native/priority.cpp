#include "priority.h"

#include <chrono>
#include <exception>
#include <system_error>
#include <thread>

#if defined(_WIN32)
#include <windows.h>
#else
#include <pthread.h>
#include <sched.h>
#endif

namespace hermes3 {

namespace {

#if !defined(_WIN32) && !defined(__APPLE__) && defined(SCHED_IDLE)
// every thread of normal priority preempts it at once when it wakes (the event loop's timers,
// V8's collector); on an idle core it runs as fast as any other
void LowerPosixThread(pthread_t thread) {
    sched_param p{};
    pthread_setschedparam(thread, SCHED_IDLE, &p);
}
#endif

}  // namespace

void BatchThisThread() {
#if defined(SCHED_BATCH) && !defined(_WIN32) && !defined(__APPLE__)
    sched_param p{};
    pthread_setschedparam(pthread_self(), SCHED_BATCH, &p);
#endif
}

NormalClass::NormalClass() {
#if defined(SCHED_BATCH) && !defined(_WIN32) && !defined(__APPLE__)
    sched_param p{};
    if (pthread_getschedparam(pthread_self(), &policy_, &p) == 0 && policy_ == SCHED_BATCH) {
        pthread_setschedparam(pthread_self(), SCHED_OTHER, &p);
    } else {
        policy_ = -1;
    }
#endif
}

NormalClass::~NormalClass() {
#if defined(SCHED_BATCH) && !defined(_WIN32) && !defined(__APPLE__)
    if (policy_ != -1) {
        sched_param p{};
        pthread_setschedparam(pthread_self(), policy_, &p);
    }
#endif
}

void NameThisThread(const char * name) {
#if defined(__APPLE__)
    pthread_setname_np(name);
#elif !defined(_WIN32)
    pthread_setname_np(pthread_self(), name);
#else
    (void) name;
#endif
}

void LowerThisThread() {
#if defined(_WIN32)
    SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_IDLE);
#elif defined(__APPLE__)
    // left alone, as ggml does: a background QoS class would confine the thread, and the threads
    // it creates, to the efficiency cores of Apple silicon
#elif defined(SCHED_IDLE)
    LowerPosixThread(pthread_self());
#endif
}

void RunLowered(const std::function<void()> & work) {
    std::exception_ptr error;
    std::thread t;
    try {
        t = std::thread([&]() {
            NameThisThread("hermes3-lowered");
            LowerThisThread();
            try {
                work();
            } catch (...) {
                error = std::current_exception();
            }
        });
    } catch (const std::system_error &) {
        work();
        return;
    }
    t.join();
    if (error) std::rethrow_exception(error);
}

void RunAt(Priority priority, const std::function<void()> & work) {
    if (priority == Priority::Low) {
        RunLowered(work);
    } else {
        NormalClass normal;
        work();
    }
}

LoweredThread::LoweredThread(Priority priority) {
    if (priority != Priority::Low) return;
    try {
        thread_ = std::thread([this]() { Loop(); });
    } catch (const std::system_error &) {
        return;  // no thread could start: the work runs on the caller
    }
#if !defined(_WIN32) && !defined(__APPLE__) && defined(SCHED_IDLE)
    // lowered from here as well (elsewhere it lowers itself as it starts), so that it is lowered
    // when the constructor returns, without waiting for it (a lowered thread may wait long for a core)
    LowerPosixThread(thread_.native_handle());
#endif
}

LoweredThread::~LoweredThread() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void LoweredThread::Run(const std::function<void()> & work) {
    if (!thread_.joinable()) {
        work();
        return;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    work_ = &work;
    done_ = false;
    cv_.notify_all();
    cv_.wait(lock, [this]() { return done_; });
    std::exception_ptr error = std::move(error_);
    error_ = nullptr;
    lock.unlock();
    if (error) std::rethrow_exception(error);
}

void LoweredThread::Loop() {
    NameThisThread("hermes3-compute");
    LowerThisThread();
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        cv_.wait(lock, [this]() { return work_ != nullptr || stop_; });
        if (!work_) return;
        const std::function<void()> * work = work_;
        lock.unlock();
        std::exception_ptr error;
        try {
            (*work)();
        } catch (...) {
            error = std::current_exception();
        }
        lock.lock();
        error_ = error;
        work_ = nullptr;
        done_ = true;
        cv_.notify_all();
    }
}

}  // namespace hermes3
