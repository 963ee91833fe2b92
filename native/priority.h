// Scheduling priority for the native threads that do heavy work (loading a model, creating and
// freeing contexts, saving and restoring state), so that the host's event loop, and every other
// thread of normal priority, runs first when the cores are all busy.
#pragma once

#include <functional>

namespace hermes3 {

enum class Priority { Normal, Low };

// Reads the JS option (ggml_sched_priority: -1 low, 0 normal).
inline Priority PriorityFromGgml(int prio) { return prio < 0 ? Priority::Low : Priority::Normal; }

// Puts the calling thread in the lowest class the OS has (SCHED_IDLE on Linux, the idle priority
// on Windows; nothing on macOS). Without privileges this cannot be undone, so it
// is only for threads made for the purpose. Threads that this thread creates inherit it.
void LowerThisThread();

// Runs `work` on a thread of its own, lowered, and waits for it; an exception it throws is thrown
// here. The calling libuv worker keeps its own priority. Runs `work` here if no thread can start.
void RunLowered(const std::function<void()> & work);

}  // namespace hermes3
