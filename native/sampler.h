// Sampler: a llama.cpp sampler chain built from validated options (see src/engine/sampling.ts).
#pragma once

#include "common.h"
#include "handles.h"

#include <memory>

namespace hermes3 {

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // new Sampler(model, options)
    explicit SamplerWrap(const Napi::CallbackInfo & info);

    // Throws DisposedError after dispose().
    const std::shared_ptr<SamplerHandle> & Require(Napi::Env env) const;

  private:
    Napi::Value Accept(const Napi::CallbackInfo & info);
    Napi::Value Reset(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    std::shared_ptr<SamplerHandle> handle_;
};

}  // namespace hermes3
