// EmbeddingContext: a llama_context that outputs embeddings instead of logits. Several inputs
// share one decode, each as its own sequence (as llama.cpp's embedding example batches them).
#pragma once

#include "common.h"
#include "handles.h"

#include <memory>
#include <mutex>

namespace hermes3 {

struct EmbeddingHandle {
    EmbeddingHandle(std::shared_ptr<ModelHandle> m, llama_context * c) : model(std::move(m)), ctx(c) {}
    ~EmbeddingHandle() {
        RpcQuietScope quiet;
        llama_free(ctx);
    }
    EmbeddingHandle(const EmbeddingHandle &) = delete;
    EmbeddingHandle & operator=(const EmbeddingHandle &) = delete;

    const std::shared_ptr<ModelHandle> model;  // declared first: freed after the context
    llama_context * const ctx;
    std::mutex busy;           // one embed() at a time uses the context
    ControlBlock * control = nullptr;  // the running embed()'s abort flag, read by llama.cpp
};

inline Priority PriorityOf(const EmbeddingHandle & h) { return h.model->priority; }

class EmbeddingWrap : public Napi::ObjectWrap<EmbeddingWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // createEmbeddingContext(model, { nCtx, nSeqMax, threads, pooling, flashAttention }) -> Promise<EmbeddingContext>
    static Napi::Value Create(const Napi::CallbackInfo & info);

    explicit EmbeddingWrap(const Napi::CallbackInfo & info);

  private:
    // embed(tokens: Int32Array, lengths: Int32Array, control: Int32Array)
    //   -> Promise<{ data: Float32Array, decodes: number }>
    Napi::Value Embed(const Napi::CallbackInfo & info);
    Napi::Value Stats(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    const std::shared_ptr<EmbeddingHandle> & Require(Napi::Env env) const;

    std::shared_ptr<EmbeddingHandle> handle_;
};

}  // namespace hermes3
