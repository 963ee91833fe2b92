// Model: one loaded GGUF (weights + vocabulary). Created only by loadModel().
#pragma once

#include "common.h"
#include "llama.h"

#include <atomic>

namespace hermes3 {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // loadModel(path, options, onProgress | null, control: Int32Array) -> Promise<Model>
    static Napi::Value Load(const Napi::CallbackInfo & info);

    explicit ModelWrap(const Napi::CallbackInfo & info);
    ~ModelWrap() override;

    llama_model * model() const { return model_; }
    const llama_vocab * vocab() const { return vocab_; }
    // Throws DisposedError when the model was freed.
    llama_model * Require(Napi::Env env) const;
    void RetainContext() { contexts_++; }
    void ReleaseContext() { contexts_--; }

  private:
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenPieces(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    llama_model * model_ = nullptr;
    const llama_vocab * vocab_ = nullptr;
    std::atomic<int> contexts_{0};
};

}  // namespace hermes3
