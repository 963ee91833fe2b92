// Model: one loaded GGUF (weights + vocabulary). Created only by loadModel().
#pragma once

#include "common.h"
#include "handles.h"

#include <memory>

namespace hermes3 {

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // loadModel(path, options, onProgress | null, control: Int32Array) -> Promise<Model>
    static Napi::Value Load(const Napi::CallbackInfo & info);

    explicit ModelWrap(const Napi::CallbackInfo & info);

    // The shared model state; throws DisposedError after dispose().
    const std::shared_ptr<ModelHandle> & Require(Napi::Env env) const;

  private:
    Napi::Value Info(const Napi::CallbackInfo & info);
    Napi::Value Tokenize(const Napi::CallbackInfo & info);
    Napi::Value TokenPieces(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    // Contexts and samplers hold their own references: dispose() only drops this one, and the
    // weights are freed when the last context over them goes.
    std::shared_ptr<ModelHandle> handle_;
};

}  // namespace hermes3
