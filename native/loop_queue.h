// Work handed from the library's threads to the event loop, without a lock the event loop waits on.
//
// Node's thread-safe functions wake the event loop while they hold their queue's lock. When the
// woken main thread preempts the thread that holds it, the event loop then sleeps on the lock
// until that thread runs again: milliseconds on a machine with few cores. Here a producer pushes
// an item onto a lock-free stack and only then signals a libuv async handle (itself lock-free),
// so the event loop never waits for another thread to hand it work.
//
// One queue per environment (main thread or worker), made at module init. Items are registered
// on the main thread while they may be posted; a registered item keeps the event loop alive.
// At environment teardown every registered item is stopped (after Stop returns, no thread posts
// it again), then torn down, and the handle is closed.
#pragma once

#include <napi.h>

#include <atomic>
#include <initializer_list>
#include <unordered_set>

namespace hermes3 {

// Calls `fn` in a callback scope (the microtasks it queues run when it returns), from OnLoop. A
// call that fails (the callback threw, or the environment is being torn down, as when a worker is
// terminated while the callback runs) is dropped: node-addon-api's MakeCallback would abort the
// process when it cannot build the error of a terminated environment.
void CallBack(Napi::Env env, const Napi::FunctionReference & fn, napi_async_context async, std::initializer_list<napi_value> args);

class LoopItem {
  public:
    virtual ~LoopItem() = default;
    // main thread: run the work posted (an item posted several times before the loop ran it runs once)
    virtual void OnLoop(Napi::Env env) = 0;
    // main thread, at environment teardown: no thread may post the item after this returns
    virtual void Stop() = 0;
    // main thread, at environment teardown, after every item was stopped: free the item
    virtual void Teardown() = 0;

  private:
    friend class LoopQueue;
    LoopItem * queueNext_ = nullptr;
};

class LoopQueue {
  public:
    // Makes the environment's queue; throws when the runtime does not export libuv's functions.
    static LoopQueue * Install(Napi::Env env);

    // main thread: the item may be posted from now on and keeps the event loop alive
    void Register(LoopItem * item);
    // main thread: the item will not be posted again
    void Unregister(LoopItem * item);
    // any thread: OnLoop runs on the event loop soon. The caller makes sure the item is not
    // already in the queue (posted and not yet run).
    void Post(LoopItem * item);

  private:
    LoopQueue() = default;
    static void OnAsync(void * handle);
    static void OnCleanup(napi_async_cleanup_hook_handle hook, void * data);
    static void OnClosed(void * handle);
    void Drain();

    napi_env env_ = nullptr;
    void * handle_ = nullptr;  // uv_async_t, sized by libuv at run time
    napi_async_cleanup_hook_handle hook_ = nullptr;
    std::atomic<LoopItem *> head_{nullptr};
    std::unordered_set<LoopItem *> live_;
};

}  // namespace hermes3
