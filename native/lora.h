// LoRA adapters: loaded once for a model, applied to any of its contexts with a scale each.
#pragma once

#include "common.h"
#include "handles.h"

#include <memory>
#include <vector>

namespace hermes3 {

class LoraWrap : public Napi::ObjectWrap<LoraWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // loadLora(model, path) -> Promise<Lora>
    static Napi::Value Load(const Napi::CallbackInfo & info);

    explicit LoraWrap(const Napi::CallbackInfo & info);

    // The shared adapter state; throws DisposedError after dispose().
    const std::shared_ptr<LoraHandle> & Require(Napi::Env env) const;

  private:
    // info() -> { metadata: { key: value } }: the adapter file's scalar metadata as llama.cpp read it
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    // Contexts that apply the adapter hold their own references: dispose() drops this one.
    std::shared_ptr<LoraHandle> handle_;
};

// Reads [{ adapter: Lora, scale: number }] (main thread): every adapter must be live and loaded
// for `model`. Throws ERR_INVALID_ARG or ERR_DISPOSED otherwise.
std::vector<LoraUse> ReadLoraList(Napi::Env env, const Napi::Value & value, const std::shared_ptr<ModelHandle> & model);

// Makes `next` the context's adapters (on the thread that owns the context, between decodes).
// Returns false when the adapters in effect (those with a non-zero scale) are the same as before.
// `next` receives the previous list: release it outside the model's adapter lock.
bool ApplyLoras(ContextHandle & context, std::vector<LoraUse> & next);

}  // namespace hermes3
