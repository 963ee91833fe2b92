// One generic promise-returning operation: runs a lambda on one of the library's worker threads
// (worker_threads.h), and settles the promise on the main thread with a conversion of its result,
// or rejects it with a coded error. libuv's pool (4 threads by default) stays free for the
// application's files, DNS and crypto, however long a load takes. The thread hands its result
// over through the environment's loop queue (loop_queue.h), so the event loop never waits on a
// lock the thread holds (libuv's own work queue signals the loop while holding its lock).
#pragma once

#include "common.h"
#include "loop_queue.h"
#include "priority.h"
#include "worker_threads.h"

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <vector>

namespace hermes3 {

template <typename T>
class PromiseWorker final : public LoopItem {
  public:
    using Execute_ = std::function<T()>;
    using Resolve_ = std::function<Napi::Value(Napi::Env, T &)>;
    using Finally_ = std::function<void(Napi::Env)>;

    // keepAlive: JS objects that must outlive the work (the model a context uses, ...).
    // finally: runs on the main thread before the promise settles, success or not (not at
    // environment teardown, where the worker and what it holds are simply freed).
    // priority: Low runs the work on a lowered thread of its own (RunAt); the worker's thread,
    // which waits for it and hands the result over, keeps normal priority.
    static Napi::Promise Run(Napi::Env env, const char * name, Execute_ execute, Resolve_ resolve,
                             std::vector<Napi::Object> keepAlive = {}, Finally_ finally = nullptr,
                             Priority priority = Priority::Normal) {
        auto * worker = new PromiseWorker(env, name, std::move(execute), std::move(resolve), std::move(finally));
        worker->priority_ = priority;
        for (auto & obj : keepAlive) worker->keepAlive_.push_back(Napi::Persistent(obj));
        Napi::Promise promise = worker->deferred_.Promise();
        worker->Start(env);
        return promise;
    }

    void OnLoop(Napi::Env env) override {
        queue_->Unregister(this);
        try {
            Napi::HandleScope scope(env);
            // the promise's reactions run when the callback scope closes, as after any callback
            Napi::CallbackScope callback(env, async_);
            if (finally_) finally_(env);
            if (result_) {
                try {
                    deferred_.Resolve(resolve_(env, *result_));
                } catch (const Napi::Error & e) {
                    deferred_.Reject(e.Value());
                }
            } else {
                deferred_.Reject(MakeError(env, code_, message_).Value());
            }
        } catch (const Napi::Error &) {
            // N-API calls fail while the environment is shutting down; nothing can be settled
            // then, and no exception may escape into the event loop
        }
        delete this;
    }

    // environment teardown: wait until the thread has handed its result over (as node waits for
    // the work it runs on libuv's pool)
    void Stop() override {
        std::unique_lock<std::mutex> lock(thread_->mutex);
        thread_->cv.wait(lock, [&]() { return thread_->posted; });
    }

    void Teardown() override { delete this; }

  private:
    struct ThreadState {
        std::mutex mutex;
        std::condition_variable cv;
        bool posted = false;
    };

    PromiseWorker(Napi::Env env, const char * name, Execute_ execute, Resolve_ resolve, Finally_ finally)
        : deferred_(Napi::Promise::Deferred::New(env)), async_(env, name),
          execute_(std::move(execute)), resolve_(std::move(resolve)), finally_(std::move(finally)) {}

    void Start(Napi::Env env) {
        queue_ = GetAddonData(env).loopQueue;
        thread_ = std::make_shared<ThreadState>();
        queue_->Register(this);
        try {
            RunOnWorkerThread([this, queue = queue_, state = thread_]() {
                Execute();
                queue->Post(this);  // the worker belongs to the main thread from here
                std::lock_guard<std::mutex> lock(state->mutex);
                state->posted = true;
                state->cv.notify_all();
            });
        } catch (const std::system_error & e) {
            queue_->Unregister(this);
            delete this;
            Throw(env, "ERR_NATIVE", std::string("could not start a thread (") + e.what() + "): the system is out of threads or memory");
        }
    }

    void Execute() {
        try {
            RunAt(priority_, [this]() { result_.emplace(execute_()); });
        } catch (const NativeError & e) {
            code_ = e.code;
            message_ = e.what();
        } catch (const std::exception & e) {
            message_ = e.what();
        }
    }

    Napi::Promise::Deferred deferred_;
    Napi::AsyncContext async_;
    Execute_ execute_;
    Resolve_ resolve_;
    Finally_ finally_;
    std::optional<T> result_;
    Priority priority_ = Priority::Normal;
    std::string code_ = "ERR_NATIVE";
    std::string message_;
    std::vector<Napi::ObjectReference> keepAlive_;
    LoopQueue * queue_ = nullptr;
    std::shared_ptr<ThreadState> thread_;
};

// Lets go of `handle` on a thread of its own, so that freeing what it owns (unmapping a model, joining
// a context's threads) never blocks the event loop, at the handle's priority (PriorityOf). Work
// still running on it (an embed(), a generation) keeps it until it ends. Resolves when it is done.
template <typename Handle>
Napi::Promise ReleaseOffThread(Napi::Env env, const char * name, std::shared_ptr<Handle> handle) {
    const Priority priority = handle ? PriorityOf(*handle) : Priority::Normal;
    auto box = std::make_shared<std::shared_ptr<Handle>>(std::move(handle));
    return PromiseWorker<bool>::Run(
        env, name, [box]() { box->reset(); return true; },
        [](Napi::Env env, bool &) -> Napi::Value { return env.Undefined(); }, {}, nullptr, priority);
}

}  // namespace hermes3
