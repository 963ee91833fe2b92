#include "context.h"

#include "generation.h"
#include "log.h"
#include "model.h"
#include "worker.h"

#include <memory>

namespace hermes3 {

Napi::Function ContextWrap::Define(Napi::Env env) {
    return DefineClass(env, "Context", {
        InstanceMethod<&ContextWrap::Generate>("generate"),
        InstanceMethod<&ContextWrap::RemoveTokens>("removeTokens"),
        InstanceMethod<&ContextWrap::SequenceLength>("sequenceLength"),
        InstanceMethod<&ContextWrap::Stats>("stats"),
        InstanceMethod<&ContextWrap::Dispose>("dispose"),
    });
}

ContextWrap::ContextWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ContextWrap>(info) {
    if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsExternal()) {
        Throw(info.Env(), "ERR_INVALID_USE", "Context objects are created by createContext()");
    }
    model_ = Napi::Persistent(info[0].As<Napi::Object>());
    ModelWrap::Unwrap(model_.Value())->RetainContext();
    ctx_ = info[1].As<Napi::External<llama_context>>().Data();
    llama_set_abort_callback(ctx_, AbortCallback, this);
}

ContextWrap::~ContextWrap() { Free(); }

void ContextWrap::Free() {
    if (!ctx_) return;
    llama_free(ctx_);
    ctx_ = nullptr;
    if (!model_.IsEmpty()) {
        ModelWrap::Unwrap(model_.Value())->ReleaseContext();
        model_.Reset();
    }
}

llama_context * ContextWrap::Require(Napi::Env env) const {
    if (!ctx_) Throw(env, "ERR_DISPOSED", "the context has been disposed");
    return ctx_;
}

bool ContextWrap::AbortCallback(void * data) {
    GenerationJob * job = static_cast<ContextWrap *>(data)->active.load();
    return job != nullptr && job->Cancelled();
}

Napi::Value ContextWrap::Create(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object modelObj = info[0].As<Napi::Object>();
    ModelWrap * model = ModelWrap::Unwrap(modelObj);
    llama_model * m = model->Require(env);
    Napi::Object o = info[1].As<Napi::Object>();

    llama_context_params p = llama_context_default_params();
    p.n_ctx = o.Get("nCtx").As<Napi::Number>().Uint32Value();
    p.n_batch = o.Get("nBatch").As<Napi::Number>().Uint32Value();
    p.n_ubatch = o.Get("nUbatch").As<Napi::Number>().Uint32Value();
    p.n_seq_max = o.Get("nSeqMax").As<Napi::Number>().Uint32Value();
    p.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
    p.n_threads_batch = o.Get("threadsBatch").As<Napi::Number>().Int32Value();
    p.flash_attn_type = (llama_flash_attn_type) o.Get("flashAttention").As<Napi::Number>().Int32Value();
    p.type_k = (ggml_type) o.Get("typeK").As<Napi::Number>().Int32Value();
    p.type_v = (ggml_type) o.Get("typeV").As<Napi::Number>().Int32Value();
    p.kv_unified = o.Get("kvUnified").ToBoolean();
    p.no_perf = true;

    // the model may not be freed while its context is being created
    model->RetainContext();
    auto modelRef = std::make_shared<Napi::ObjectReference>(Napi::Persistent(modelObj));
    return PromiseWorker<llama_context *>::Run(
        env, "hermes3:createContext",
        [m, p]() {
            BeginErrorCapture();
            llama_context * ctx = llama_init_from_model(m, p);
            std::string errors = EndErrorCapture();
            if (!ctx) throw NativeError("ERR_CONTEXT_CREATE", errors.empty() ? "llama.cpp could not create the context" : errors);
            return ctx;
        },
        [modelRef](Napi::Env env, llama_context *& ctx) -> Napi::Value {
            Napi::Object obj = GetAddonData(env).contextConstructor.New({modelRef->Value(), Napi::External<llama_context>::New(env, ctx)});
            ctx = nullptr;
            return obj;
        },
        {}, [model, modelRef]() {
            model->ReleaseContext();
        });
}

Napi::Value ContextWrap::Generate(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = Require(env);
    if (active.load() != nullptr) Throw(env, "ERR_BUSY", "a generation is already running on this context");
    return GenerationJob::Start(info, this, ctx);
}

// removeTokens(seq, from, to): drop KV positions [from, to) of a sequence (to < 0: to the end)
Napi::Value ContextWrap::RemoveTokens(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = Require(env);
    if (active.load() != nullptr) Throw(env, "ERR_BUSY", "a generation is running on this context");
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    const int32_t from = info[1].As<Napi::Number>().Int32Value();
    const int32_t to = info[2].As<Napi::Number>().Int32Value();
    return Napi::Boolean::New(env, llama_memory_seq_rm(llama_get_memory(ctx), seq, from, to));
}

// sequenceLength(seq): number of positions held in the KV cache for a sequence
Napi::Value ContextWrap::SequenceLength(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    return Napi::Number::New(env, llama_memory_seq_pos_max(llama_get_memory(ctx), seq) + 1);
}

Napi::Value ContextWrap::Stats(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    llama_context * ctx = Require(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("nCtx", llama_n_ctx(ctx));
    out.Set("nCtxSeq", llama_n_ctx_seq(ctx));
    out.Set("nBatch", llama_n_batch(ctx));
    out.Set("nUbatch", llama_n_ubatch(ctx));
    out.Set("nSeqMax", llama_n_seq_max(ctx));
    out.Set("threads", llama_n_threads(ctx));
    out.Set("threadsBatch", llama_n_threads_batch(ctx));
    return out;
}

Napi::Value ContextWrap::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (active.load() != nullptr) Throw(env, "ERR_BUSY", "a generation is running on this context; abort it and wait for it first");
    Free();
    return env.Undefined();
}

}  // namespace hermes3
