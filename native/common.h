// Shared helpers for the N-API shim: coded errors, per-instance addon data, and argument access.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace hermes3 {

class LoopQueue;

// An error raised on a worker thread or in a method; `code` becomes the JS error's `code`
// property, which the TypeScript layer maps to its typed error classes.
class NativeError : public std::runtime_error {
  public:
    NativeError(std::string code, const std::string & message) : std::runtime_error(message), code(std::move(code)) {}
    std::string code;
};

inline Napi::Error MakeError(Napi::Env env, const std::string & code, const std::string & message) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("code", Napi::String::New(env, code));
    return err;
}

[[noreturn]] inline void Throw(Napi::Env env, const std::string & code, const std::string & message) {
    throw MakeError(env, code, message);
}

// Per-instance data: constructors of the wrapped classes, so the addon works in worker threads.
struct AddonData {
    Napi::FunctionReference modelConstructor;
    Napi::FunctionReference contextConstructor;
    Napi::FunctionReference samplerConstructor;
    Napi::FunctionReference embeddingConstructor;
    Napi::FunctionReference loraConstructor;
    LoopQueue * loopQueue = nullptr;  // freed by its own cleanup hook
};

inline AddonData & GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// Wrapped objects whose state a worker made are built as `new X(External<shared_ptr<H>>)`.
// NewWrapped() does that on the main thread; TakeHandle() is the constructor's side, which
// refuses a call from JS with `usage`.
template <typename H>
Napi::Value NewWrapped(Napi::Env env, Napi::FunctionReference & constructor, std::shared_ptr<H> & handle) {
    auto * owned = new std::shared_ptr<H>(std::move(handle));
    try {
        return constructor.New({Napi::External<std::shared_ptr<H>>::New(env, owned)});
    } catch (...) {
        delete owned;
        throw;
    }
}

template <typename H>
std::shared_ptr<H> TakeHandle(const Napi::CallbackInfo & info, const char * usage) {
    if (info.Length() != 1 || !info[0].IsExternal()) Throw(info.Env(), "ERR_INVALID_USE", usage);
    auto * owned = info[0].As<Napi::External<std::shared_ptr<H>>>().Data();
    std::shared_ptr<H> handle = std::move(*owned);
    delete owned;
    return handle;
}

// A flag block shared with JS through an Int32Array: JS writes, a native thread reads.
// Slot 0: abort requested. Slot 1: chunks consumed by JS (generation backpressure).
class ControlBlock {
  public:
    ControlBlock() = default;
    explicit ControlBlock(const Napi::Int32Array & array) {
        if (array.ElementLength() < 2) throw std::invalid_argument("control block needs 2 slots");
        data_ = array.Data();
        ref_ = Napi::Persistent(array);
    }
    bool aborted() const { return data_ && __atomic_load_n(&data_[0], __ATOMIC_ACQUIRE) != 0; }
    int32_t consumed() const { return data_ ? __atomic_load_n(&data_[1], __ATOMIC_ACQUIRE) : 0; }
    void release() { ref_.Reset(); data_ = nullptr; }

  private:
    const int32_t * data_ = nullptr;
    Napi::Reference<Napi::Int32Array> ref_;
};

}  // namespace hermes3
