// One generic promise-returning worker: run a lambda on the libuv pool, resolve with a
// conversion run on the main thread, reject with a coded error.
#pragma once

#include "common.h"
#include "priority.h"

#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace hermes3 {

template <typename T>
class PromiseWorker : public Napi::AsyncWorker {
  public:
    using Execute_ = std::function<T()>;
    using Resolve_ = std::function<Napi::Value(Napi::Env, T &)>;
    using Finally_ = std::function<void()>;

    // keepAlive: JS objects that must outlive the work (the model a context uses, ...).
    // finally: runs on the main thread before the promise settles, success or not.
    // priority: Low runs the work on a lowered thread of its own (RunLowered).
    // meanwhile: with Low, runs on the libuv worker every 10 ms while the lowered thread works,
    // and once when it is done (RunLowered)
    static Napi::Promise Run(Napi::Env env, const char * name, Execute_ execute, Resolve_ resolve,
                             std::vector<Napi::Object> keepAlive = {}, Finally_ finally = nullptr,
                             Priority priority = Priority::Normal, Finally_ meanwhile = nullptr) {
        auto * worker = new PromiseWorker(env, name, std::move(execute), std::move(resolve), std::move(finally));
        worker->priority_ = priority;
        worker->meanwhile_ = std::move(meanwhile);
        for (auto & obj : keepAlive) worker->keepAlive_.push_back(Napi::Persistent(obj));
        Napi::Promise promise = worker->deferred_.Promise();
        worker->Queue();
        return promise;
    }

  protected:
    void Execute() override {
        try {
            RunAt(priority_, [this]() { result_.emplace(execute_()); }, meanwhile_);
        } catch (const NativeError & e) {
            code_ = e.code;
            SetError(e.what());
        } catch (const std::exception & e) {
            code_ = "ERR_NATIVE";
            SetError(e.what());
        }
    }

    // N-API calls fail (and node-addon-api throws) while the environment is shutting down;
    // nothing can be settled then, and no exception may escape into the event loop.
    void OnOK() override {
        Napi::Env env = Env();
        if (finally_) finally_();
        try {
            Napi::HandleScope scope(env);
            try {
                deferred_.Resolve(resolve_(env, *result_));
            } catch (const Napi::Error & e) {
                deferred_.Reject(e.Value());
            }
        } catch (const Napi::Error &) {
        }
    }

    void OnError(const Napi::Error & error) override {
        Napi::Env env = Env();
        if (finally_) finally_();
        try {
            Napi::HandleScope scope(env);
            deferred_.Reject(MakeError(env, code_, error.Message()).Value());
        } catch (const Napi::Error &) {
        }
    }

  private:
    PromiseWorker(Napi::Env env, const char * name, Execute_ execute, Resolve_ resolve, Finally_ finally)
        : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)),
          execute_(std::move(execute)), resolve_(std::move(resolve)), finally_(std::move(finally)) {}

    Napi::Promise::Deferred deferred_;
    Execute_ execute_;
    Resolve_ resolve_;
    Finally_ finally_;
    Finally_ meanwhile_;
    std::optional<T> result_;
    Priority priority_ = Priority::Normal;
    std::string code_ = "ERR_NATIVE";
    std::vector<Napi::ObjectReference> keepAlive_;
};

// Lets go of `handle` on the libuv pool, so that freeing what it owns (unmapping a model, joining
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
