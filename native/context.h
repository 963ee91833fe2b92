// Context: a llama_context (KV cache for up to nSeqMax sequences) over a model.
#pragma once

#include "common.h"
#include "llama.h"

#include <atomic>

namespace hermes3 {

class GenerationJob;

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // createContext(model, options) -> Promise<Context>
    static Napi::Value Create(const Napi::CallbackInfo & info);

    explicit ContextWrap(const Napi::CallbackInfo & info);
    ~ContextWrap() override;

    llama_context * Require(Napi::Env env) const;
    const llama_vocab * vocab() const { return llama_model_get_vocab(llama_get_model(ctx_)); }
    // The generation running on this context, if any (one at a time).
    std::atomic<GenerationJob *> active{nullptr};

  private:
    static bool AbortCallback(void * data);
    Napi::Value Generate(const Napi::CallbackInfo & info);
    Napi::Value RemoveTokens(const Napi::CallbackInfo & info);
    Napi::Value SequenceLength(const Napi::CallbackInfo & info);
    Napi::Value Stats(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);
    void Free();

    llama_context * ctx_ = nullptr;
    Napi::ObjectReference model_;
};

}  // namespace hermes3
