// Context: a llama_context (KV cache for up to nSeqMax sequences) over a model.
#pragma once

#include "common.h"
#include "handles.h"

#include <memory>

namespace hermes3 {

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // createContext(model, options) -> Promise<Context>
    static Napi::Value Create(const Napi::CallbackInfo & info);

    explicit ContextWrap(const Napi::CallbackInfo & info);

    // Throws DisposedError after dispose().
    const std::shared_ptr<ContextHandle> & Require(Napi::Env env) const;

  private:
    Napi::Value Generate(const Napi::CallbackInfo & info);
    Napi::Value RemoveTokens(const Napi::CallbackInfo & info);
    Napi::Value Stats(const Napi::CallbackInfo & info);
    Napi::Value SaveSequence(const Napi::CallbackInfo & info);
    Napi::Value RestoreSequence(const Napi::CallbackInfo & info);
    Napi::Value SetLoras(const Napi::CallbackInfo & info);
    Napi::Value SaveSequenceRange(const Napi::CallbackInfo & info);
    Napi::Value AppendSequence(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    std::shared_ptr<ContextHandle> handle_;
};

}  // namespace hermes3
