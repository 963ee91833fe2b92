#include "embedding.h"

#include "log.h"
#include "model.h"
#include "worker.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace hermes3 {
namespace {

bool AbortCallback(void * data) {
    auto * h = static_cast<EmbeddingHandle *>(data);
    return h->control && h->control->aborted();
}

struct EmbedResult {
    std::vector<float> data;
    int32_t decodes = 0;
};

// Runs one decode over the inputs [first, last) and appends their embeddings to `out`.
void DecodeGroup(EmbeddingHandle & h, llama_batch & batch, const int32_t * tokens, const std::vector<size_t> & offsets,
                 const int32_t * lengths, size_t first, size_t last, EmbedResult & out) {
    llama_context * ctx = h.ctx;
    const llama_model * model = h.model->model;
    const enum llama_pooling_type pooling = llama_pooling_type(ctx);
    batch.n_tokens = 0;
    for (size_t i = first; i < last; i++) {
        const auto seq = (llama_seq_id) (i - first);
        for (int32_t p = 0; p < lengths[i]; p++) {
            const int32_t k = batch.n_tokens++;
            batch.token[k] = tokens[offsets[i] + p];
            batch.pos[k] = p;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = seq;
            batch.logits[k] = 1;  // pooled embeddings need every token's output
        }
    }
    llama_memory_clear(llama_get_memory(ctx), true);
    BeginErrorCapture();
    int32_t rc;
    try {
        rc = llama_model_has_encoder(model) && !llama_model_has_decoder(model) ? llama_encode(ctx, batch) : llama_decode(ctx, batch);
    } catch (...) {
        EndErrorCapture();
        throw;
    }
    std::string errors = EndErrorCapture();
    if (h.control && h.control->aborted()) throw NativeError("ABORT_ERR", "embedding was aborted");
    if (rc != 0) throw NativeError("ERR_DECODE", errors.empty() ? "llama.cpp could not compute the embeddings (code " + std::to_string(rc) + ")" : errors);
    out.decodes++;
    const int32_t n_embd = llama_model_n_embd_out(model);
    if (pooling == LLAMA_POOLING_TYPE_NONE) {
        for (int32_t k = 0; k < batch.n_tokens; k++) {
            const float * e = llama_get_embeddings_ith(ctx, k);
            if (!e) throw NativeError("ERR_DECODE", "llama.cpp returned no embedding for token " + std::to_string(k));
            out.data.insert(out.data.end(), e, e + n_embd);
        }
    } else {
        for (size_t i = first; i < last; i++) {
            const float * e = llama_get_embeddings_seq(ctx, (llama_seq_id) (i - first));
            if (!e) throw NativeError("ERR_DECODE", "llama.cpp returned no embedding for input " + std::to_string(i));
            out.data.insert(out.data.end(), e, e + n_embd);
        }
    }
}

}  // namespace

Napi::Function EmbeddingWrap::Define(Napi::Env env) {
    return DefineClass(env, "EmbeddingContext", {
        InstanceMethod<&EmbeddingWrap::Embed>("embed"),
        InstanceMethod<&EmbeddingWrap::Stats>("stats"),
        InstanceMethod<&EmbeddingWrap::Dispose>("dispose"),
    });
}

EmbeddingWrap::EmbeddingWrap(const Napi::CallbackInfo & info)
    : Napi::ObjectWrap<EmbeddingWrap>(info), handle_(TakeHandle<EmbeddingHandle>(info, "EmbeddingContext objects are created by createEmbeddingContext()")) {}

const std::shared_ptr<EmbeddingHandle> & EmbeddingWrap::Require(Napi::Env env) const {
    if (!handle_) Throw(env, "ERR_DISPOSED", "the embedding context has been disposed");
    return handle_;
}

Napi::Value EmbeddingWrap::Create(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = ModelWrap::Unwrap(info[0].As<Napi::Object>())->Require(env);
    Napi::Object o = info[1].As<Napi::Object>();

    llama_context_params p = llama_context_default_params();
    p.n_ctx = o.Get("nCtx").As<Napi::Number>().Uint32Value();
    // every decode fits one micro-batch: a pooled sequence split over two would be pooled twice
    p.n_batch = p.n_ctx;
    p.n_ubatch = p.n_ctx;
    p.n_seq_max = o.Get("nSeqMax").As<Napi::Number>().Uint32Value();
    p.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
    p.n_threads_batch = p.n_threads;
    p.flash_attn_type = (llama_flash_attn_type) o.Get("flashAttention").As<Napi::Number>().Int32Value();
    p.pooling_type = (enum llama_pooling_type) o.Get("pooling").As<Napi::Number>().Int32Value();
    p.embeddings = true;
    p.kv_unified = true;
    p.no_perf = true;

    using Result = std::shared_ptr<EmbeddingHandle>;
    return PromiseWorker<Result>::Run(
        env, "hermes3:createEmbeddingContext",
        [model, p]() -> Result {
            std::string errors;
            llama_context * ctx = model->NewContext(p, errors);
            if (!ctx) throw NativeError("ERR_CONTEXT_CREATE", errors.empty() ? "llama.cpp could not create the embedding context" : errors);
            auto handle = std::make_shared<EmbeddingHandle>(model, ctx);
            llama_set_abort_callback(ctx, AbortCallback, handle.get());
            return handle;
        },
        [](Napi::Env env, Result & handle) { return NewWrapped(env, GetAddonData(env).embeddingConstructor, handle); },
        {}, nullptr, model->priority);
}

Napi::Value EmbeddingWrap::Embed(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<EmbeddingHandle> h = Require(env);
    Napi::Int32Array tokensArg = info[0].As<Napi::Int32Array>();
    Napi::Int32Array lengthsArg = info[1].As<Napi::Int32Array>();
    auto control = std::make_shared<ControlBlock>(info[2].As<Napi::Int32Array>());
    std::vector<int32_t> tokens(tokensArg.Data(), tokensArg.Data() + tokensArg.ElementLength());
    std::vector<int32_t> lengths(lengthsArg.Data(), lengthsArg.Data() + lengthsArg.ElementLength());
    const int32_t n_vocab = llama_vocab_n_tokens(h->model->vocab);
    const uint32_t n_ctx = llama_n_batch(h->ctx);
    size_t total = 0;
    for (int32_t n : lengths) {
        if (n <= 0 || (uint32_t) n > n_ctx) Throw(env, "ERR_INVALID_ARG", "each input must have 1 to nCtx tokens");
        total += (size_t) n;
    }
    if (total != tokens.size()) Throw(env, "ERR_INVALID_ARG", "the lengths do not add up to the token count");
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) Throw(env, "ERR_INVALID_ARG", "token id " + std::to_string(t) + " is outside the vocabulary");
    }

    return PromiseWorker<EmbedResult>::Run(
        env, "hermes3:embed",
        [h, control, tokens = std::move(tokens), lengths = std::move(lengths)]() -> EmbedResult {
            std::lock_guard<std::mutex> lock(h->busy);
            h->control = control.get();
            struct Clear {
                EmbeddingHandle & h;
                ~Clear() { h.control = nullptr; }
            } clear{*h};
            const uint32_t n_ctx = llama_n_batch(h->ctx);
            const uint32_t n_seq_max = llama_n_seq_max(h->ctx);
            std::vector<size_t> offsets(lengths.size());
            for (size_t i = 1; i < lengths.size(); i++) offsets[i] = offsets[i - 1] + (size_t) lengths[i - 1];
            llama_batch batch = llama_batch_init((int32_t) n_ctx, 0, 1);
            EmbedResult out;
            try {
                // greedy grouping, in input order: as many inputs as fit the context and the sequence slots
                size_t first = 0;
                while (first < lengths.size()) {
                    if (control->aborted()) throw NativeError("ABORT_ERR", "embedding was aborted");
                    size_t last = first;
                    uint32_t used = 0;
                    while (last < lengths.size() && last - first < n_seq_max && used + (uint32_t) lengths[last] <= n_ctx) {
                        used += (uint32_t) lengths[last++];
                    }
                    DecodeGroup(*h, batch, tokens.data(), offsets, lengths.data(), first, last, out);
                    first = last;
                }
            } catch (...) {
                llama_batch_free(batch);
                throw;
            }
            llama_batch_free(batch);
            return out;
        },
        [](Napi::Env env, EmbedResult & r) -> Napi::Value {
            Napi::Object o = Napi::Object::New(env);
            Napi::Float32Array data = Napi::Float32Array::New(env, r.data.size());
            if (!r.data.empty()) std::memcpy(data.Data(), r.data.data(), r.data.size() * sizeof(float));
            o.Set("data", data);
            o.Set("decodes", Napi::Number::New(env, r.decodes));
            return o;
        },
        {}, [control](Napi::Env) { control->release(); });
}

Napi::Value EmbeddingWrap::Stats(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & h = Require(env);
    static const char * names[] = {"none", "mean", "cls", "last", "rank"};
    const int pooling = (int) llama_pooling_type(h->ctx);
    Napi::Object out = Napi::Object::New(env);
    // llama.cpp pads n_ctx; n_batch is what one decode takes
    out.Set("nCtx", llama_n_batch(h->ctx));
    out.Set("nSeqMax", llama_n_seq_max(h->ctx));
    out.Set("nEmbd", llama_model_n_embd_out(h->model->model));
    out.Set("pooling", pooling >= 0 && pooling < 5 ? names[pooling] : "unknown");
    return out;
}

// Drops this wrapper's reference off the main thread (freeing the buffers takes a while); a
// running embed() keeps the context until it ends.
Napi::Value EmbeddingWrap::Dispose(const Napi::CallbackInfo & info) {
    return ReleaseOffThread(info.Env(), "hermes3:disposeEmbedding", std::move(handle_));
}

}  // namespace hermes3
