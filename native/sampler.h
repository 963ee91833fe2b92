// Sampler: a llama.cpp sampler chain built from validated options (see src/engine/sampling.ts).
#pragma once

#include "common.h"
#include "llama.h"

namespace hermes3 {

class SamplerWrap : public Napi::ObjectWrap<SamplerWrap> {
  public:
    static Napi::Function Define(Napi::Env env);
    // new Sampler(model, options)
    explicit SamplerWrap(const Napi::CallbackInfo & info);
    ~SamplerWrap() override;

    llama_sampler * Require(Napi::Env env) const;
    llama_sampler * chain() const { return chain_; }
    // set while a generation samples with this chain
    bool busy = false;

  private:
    Napi::Value Accept(const Napi::CallbackInfo & info);
    Napi::Value Reset(const Napi::CallbackInfo & info);
    Napi::Value Dispose(const Napi::CallbackInfo & info);

    llama_sampler * chain_ = nullptr;
    Napi::ObjectReference model_;
};

}  // namespace hermes3
