// The library's own threads for promise-returning work (worker.h). They are kept between uses,
// as libuv keeps its pool, so that their stacks and glibc's malloc arenas are reused rather than
// made anew for every load and dispose (a fresh thread per operation raised the soak's resident
// memory from 218-244 to 459 MB), and more are started when all are busy, so a long load never
// queues a short save behind it. libuv's pool is left to the application.
#pragma once

#include <functional>

namespace hermes3 {

// Runs `task` on one of the threads; returns at once. Throws std::system_error when there is no
// thread and none can be started (nothing is queued then).
void RunOnWorkerThread(std::function<void()> task);

}  // namespace hermes3
