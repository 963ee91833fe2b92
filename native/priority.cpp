#include "priority.h"

#include <exception>
#include <system_error>
#include <thread>

#if defined(_WIN32)
#include <windows.h>
#elif defined(__APPLE__)
#else
#include <pthread.h>
#include <sched.h>
#endif

namespace hermes3 {

void LowerThisThread() {
#if defined(_WIN32)
    SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_IDLE);
#elif defined(__APPLE__)
    // left alone, as ggml does: a background QoS class would confine the thread, and the threads
    // it creates, to the efficiency cores of Apple silicon
#elif defined(SCHED_IDLE)
    // every thread of normal priority preempts it at once when it wakes (the event loop's timers,
    // V8's collector); on an idle core it runs as fast as any other
    sched_param p{};
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &p);
#endif
}

void RunLowered(const std::function<void()> & work) {
    std::exception_ptr error;
    std::thread t;
    try {
        t = std::thread([&]() {
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

}  // namespace hermes3
