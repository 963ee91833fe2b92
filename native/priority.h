// Scheduling priority for the native threads that do heavy work (loading a model, creating and
// freeing contexts, saving and restoring state), so that the host's event loop, and every other
// thread of normal priority, runs first when the cores are all busy.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace hermes3 {

enum class Priority { Normal, Low };

// Reads the JS option (ggml_sched_priority: -1 low, 0 normal).
inline Priority PriorityFromGgml(int prio) { return prio < 0 ? Priority::Low : Priority::Normal; }

// Puts the calling thread in the lowest class the OS has (SCHED_IDLE on Linux, the idle priority
// on Windows; nothing on macOS). Without privileges this cannot be undone, so it
// is only for threads made for the purpose. Threads that this thread creates inherit it.
void LowerThisThread();

// Puts the calling thread in SCHED_BATCH (Linux; nothing elsewhere): the weight of a normal
// thread, but its wakeups never preempt the running thread, so the library's own threads of
// normal priority (a context's scheduler thread, the worker threads), which wake often, never
// push the event loop off its core; once the event loop blocks or its slice ends they run. They
// still preempt lowered threads. A thread can go back to SCHED_OTHER (NormalClass).
void BatchThisThread();

// While it lives, the calling thread is in SCHED_OTHER (work at threadPriority 'normal' on a
// worker thread: that work, and the threads it starts, get the class llama.cpp gives them).
class NormalClass {
  public:
    NormalClass();
    ~NormalClass();
    NormalClass(const NormalClass &) = delete;
    NormalClass & operator=(const NormalClass &) = delete;

  private:
    int policy_ = -1;
};

// Names the calling thread for `top -H`, perf and debuggers (at most 15 characters; Linux and
// macOS). The library's threads are named hermes3-*.
void NameThisThread(const char * name);

// Runs `work` on a thread of its own, lowered, and waits for it; an exception it throws is thrown
// here. The calling thread keeps its own priority. Runs `work` here if no thread can start.
void RunLowered(const std::function<void()> & work);
// RunLowered at Priority::Low; at Normal, runs `work` here, in SCHED_OTHER (NormalClass).
void RunAt(Priority priority, const std::function<void()> & work);

// A thread of its own, lowered, that runs the work it is handed, one piece at a time, while the
// caller waits. The thread that hands work over keeps its priority, so it can share locks with
// the event loop: a lowered thread that holds a lock the event loop needs can be kept off the
// cores by any other thread, and the event loop would wait for it (priority inversion).
// Priority::Normal runs the work on the caller instead.
class LoweredThread {
  public:
    explicit LoweredThread(Priority priority);
    ~LoweredThread();
    LoweredThread(const LoweredThread &) = delete;
    LoweredThread & operator=(const LoweredThread &) = delete;
    // Runs `work` there and waits for it; an exception it throws is thrown here.
    void Run(const std::function<void()> & work);

  private:
    void Loop();
    std::mutex mutex_;
    std::condition_variable cv_;
    const std::function<void()> * work_ = nullptr;
    std::exception_ptr error_;
    bool done_ = false;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace hermes3
