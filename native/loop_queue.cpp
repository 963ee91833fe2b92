#include "loop_queue.h"

#include "common.h"

#include <cstdlib>
#include <vector>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

namespace hermes3 {
namespace {

// The few libuv functions used, looked up in the running executable (node and Electron export
// libuv for addons). They are part of libuv 1.x's stable ABI; the handle's size comes from libuv.
struct Uv {
    using Callback = void (*)(void *);
    int (*asyncInit)(void * loop, void * handle, Callback cb) = nullptr;
    int (*asyncSend)(void * handle) = nullptr;
    void (*close)(void * handle, Callback cb) = nullptr;
    size_t (*handleSize)(int type) = nullptr;
    void (*ref)(void * handle) = nullptr;
    void (*unref)(void * handle) = nullptr;
};
constexpr int kUvAsync = 1;  // UV_ASYNC in uv_handle_type

void * Symbol(const char * name) {
#ifdef _WIN32
    return reinterpret_cast<void *>(GetProcAddress(GetModuleHandleW(nullptr), name));
#else
    return dlsym(RTLD_DEFAULT, name);
#endif
}

const Uv * LoadUv() {
    static const Uv * uv = []() -> const Uv * {
        static Uv api;
        api.asyncInit = reinterpret_cast<decltype(api.asyncInit)>(Symbol("uv_async_init"));
        api.asyncSend = reinterpret_cast<decltype(api.asyncSend)>(Symbol("uv_async_send"));
        api.close = reinterpret_cast<decltype(api.close)>(Symbol("uv_close"));
        api.handleSize = reinterpret_cast<decltype(api.handleSize)>(Symbol("uv_handle_size"));
        api.ref = reinterpret_cast<decltype(api.ref)>(Symbol("uv_ref"));
        api.unref = reinterpret_cast<decltype(api.unref)>(Symbol("uv_unref"));
        const bool ok = api.asyncInit && api.asyncSend && api.close && api.handleSize && api.ref && api.unref;
        return ok ? &api : nullptr;
    }();
    return uv;
}

// False once the environment cannot run JavaScript (a worker being terminated): N-API calls then
// fail, and node-addon-api's error for such a failure aborts the process when it cannot be built.
// napi_define_properties checks what every call into JavaScript checks.
bool CanRunJs(napi_env env) {
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return false;
    napi_value pending;
    napi_get_and_clear_last_exception(env, &pending);  // a stale one would fail the check below
    napi_value object;
    const bool ok = napi_create_object(env, &object) == napi_ok && napi_define_properties(env, object, 0, nullptr) == napi_ok;
    if (!ok) napi_get_and_clear_last_exception(env, &pending);
    napi_close_handle_scope(env, scope);
    return ok;
}

// libuv leaves a handle's first field (`data`) to its user
LoopQueue * Owner(void * handle) { return *static_cast<LoopQueue **>(handle); }

}  // namespace

void CallBack(Napi::Env env, const Napi::FunctionReference & fn, napi_async_context async, std::initializer_list<napi_value> args) {
    napi_value global = nullptr;
    napi_value result = nullptr;
    // an initializer_list's elements are one array: passed as they are, with no copy per call
    if (napi_get_global(env, &global) != napi_ok ||
        napi_make_callback(env, async, global, fn.Value(), args.size(), args.begin(), &result) != napi_ok) {
        napi_value pending;
        napi_get_and_clear_last_exception(env, &pending);
    }
}

LoopQueue * LoopQueue::Install(Napi::Env env) {
    const Uv * uv = LoadUv();
    if (!uv) {
        Throw(env, "ERR_NATIVE_LOAD", "this JavaScript runtime does not export libuv (uv_async_send), which the addon needs: run it under Node.js or Electron");
    }
    uv_loop_s * loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) Throw(env, "ERR_NATIVE_LOAD", "could not get the event loop of this environment");
    auto * queue = new LoopQueue();
    queue->env_ = env;
    queue->handle_ = std::calloc(1, uv->handleSize(kUvAsync));
    if (!queue->handle_ || uv->asyncInit(loop, queue->handle_, &LoopQueue::OnAsync) != 0) {
        std::free(queue->handle_);
        delete queue;
        Throw(env, "ERR_NATIVE_LOAD", "could not make the event loop's async handle");
    }
    *static_cast<LoopQueue **>(queue->handle_) = queue;
    uv->unref(queue->handle_);  // only registered items keep the loop alive
    napi_add_async_cleanup_hook(env, &LoopQueue::OnCleanup, queue, &queue->hook_);
    return queue;
}

void LoopQueue::Register(LoopItem * item) {
    if (live_.empty()) LoadUv()->ref(handle_);
    live_.insert(item);
}

void LoopQueue::Unregister(LoopItem * item) {
    live_.erase(item);
    if (live_.empty()) LoadUv()->unref(handle_);
}

void LoopQueue::Post(LoopItem * item) {
    LoopItem * head = head_.load(std::memory_order_relaxed);
    do {
        item->queueNext_ = head;
    } while (!head_.compare_exchange_weak(head, item, std::memory_order_release, std::memory_order_relaxed));
    LoadUv()->asyncSend(handle_);  // after the push, with no lock held
}

void LoopQueue::OnAsync(void * handle) { Owner(handle)->Drain(); }

void LoopQueue::Drain() {
    LoopItem * head = head_.exchange(nullptr, std::memory_order_acquire);
    std::vector<LoopItem *> items;
    for (; head; head = head->queueNext_) items.push_back(head);
    // the stack holds the newest first; OnLoop may post or free its item, so the list is read first
    // items not run here stay registered: the environment's teardown frees them
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
        if (!CanRunJs(env_)) return;
        (*it)->OnLoop(Napi::Env(env_));
    }
}

void LoopQueue::OnCleanup(napi_async_cleanup_hook_handle, void * data) {
    auto * queue = static_cast<LoopQueue *>(data);
    std::vector<LoopItem *> items(queue->live_.begin(), queue->live_.end());
    for (LoopItem * item : items) item->Stop();
    queue->head_.store(nullptr);
    queue->live_.clear();
    for (LoopItem * item : items) item->Teardown();
    LoadUv()->close(queue->handle_, &LoopQueue::OnClosed);
}

void LoopQueue::OnClosed(void * handle) {
    LoopQueue * queue = Owner(handle);
    napi_remove_async_cleanup_hook(queue->hook_);
    std::free(handle);
    delete queue;
}

}  // namespace hermes3
