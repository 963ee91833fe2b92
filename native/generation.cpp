#include "generation.h"

#include "sampler.h"
#include "scheduler.h"

#include <chrono>
#include <cmath>

namespace hermes3 {

double NowMs() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

Napi::Value GenerationJob::Start(const Napi::CallbackInfo & info, const std::shared_ptr<ContextHandle> & ctx) {
    Napi::Env env = info.Env();
    const std::shared_ptr<SamplerHandle> & sampler = SamplerWrap::Unwrap(info[3].As<Napi::Object>())->Require(env);
    if (sampler->busy.load()) Throw(env, "ERR_BUSY", "the sampler is in use by another generation");
    if (sampler->model != ctx->model) Throw(env, "ERR_INVALID_ARG", "the sampler was made for another model");
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    if (seq < 0 || (uint32_t) seq >= llama_n_seq_max(ctx->ctx)) {
        Throw(env, "ERR_INVALID_ARG", "sequence id " + std::to_string(seq) + " is outside this context's nSeqMax");
    }

    auto job = std::make_unique<GenerationJob>();
    job->ctx_ = ctx;
    job->sampler_ = sampler;
    job->req_.seq = seq;
    Napi::Int32Array tokens = info[2].As<Napi::Int32Array>();
    const size_t n = tokens.ElementLength();
    const size_t keep = std::min<size_t>(n, (size_t) std::max(0, info[1].As<Napi::Number>().Int32Value()));
    job->req_.keep = (int32_t) keep;
    job->req_.promptEnd = (int32_t) n;
    job->history.assign(tokens.Data(), tokens.Data() + n);
    job->history.reserve(n + 64);
    Napi::Object opts = info[4].As<Napi::Object>();
    job->req_.maxTokens = opts.Get("maxTokens").As<Napi::Number>().Int32Value();
    job->req_.window = std::max(1, opts.Get("window").As<Napi::Number>().Int32Value());
    job->req_.special = opts.Get("special").ToBoolean();
    job->control_ = ControlBlock(info[5].As<Napi::Int32Array>());
    if (ctx->scheduler->Busy(seq)) Throw(env, "ERR_BUSY", "sequence " + std::to_string(seq) + " is already generating");
    job->queue_ = GetAddonData(env).loopQueue;
    job->onEvent_ = Napi::Persistent(info[6].As<Napi::Function>());
    job->async_ = std::make_unique<Napi::AsyncContext>(env, "hermes3:generate");
    GenerationJob * raw = job.release();  // freed on the main thread after JS has heard its end
    raw->queue_->Register(raw);
    sampler->busy.store(true);
    ctx->scheduler->Submit(raw);
    return env.Undefined();
}

// Samples with the chain, then checks the token against the grammar; only when the grammar
// rejects it is the grammar applied to the whole vocabulary and the chain run again. Most
// tokens of a constrained generation pass the check, so this skips filtering 128k candidates.
llama_token GenerationJob::Sample(int32_t idx) {
    llama_context * lctx = ctx_->ctx;
    llama_sampler * chain = sampler_->chain;
    llama_sampler * grammar = sampler_->grammar;
    if (!grammar) return llama_sampler_sample(chain, lctx, idx);
    const float * logits = llama_get_logits_ith(lctx, idx);
    const int32_t n_vocab = llama_vocab_n_tokens(ctx_->model->vocab);
    auto fill = [&]() {
        candidates_.resize(n_vocab);
        for (llama_token t = 0; t < n_vocab; t++) candidates_[t] = llama_token_data{t, logits[t], 0.0f};
        return llama_token_data_array{candidates_.data(), candidates_.size(), -1, false};
    };
    llama_token_data_array cur = fill();
    llama_sampler_apply(chain, &cur);
    llama_token token = cur.data[cur.selected].id;
    llama_token_data single{token, 1.0f, 0.0f};
    llama_token_data_array one{&single, 1, -1, false};
    llama_sampler_apply(grammar, &one);
    if (single.logit == -INFINITY) {
        cur = fill();
        llama_sampler_apply(grammar, &cur);
        llama_sampler_apply(chain, &cur);
        token = cur.data[cur.selected].id;
    }
    llama_sampler_accept(grammar, token);
    llama_sampler_accept(chain, token);
    return token;
}

bool GenerationJob::SampleAndEmit(int32_t idx) {
    const llama_token token = Sample(idx);
    result.nGenerated++;
    history.push_back(token);
    lastEmitMs = NowMs();
    Emit(token);
    if (llama_vocab_is_eog(ctx_->model->vocab, token)) {
        stopReason_ = "stop";
        return false;
    }
    if (result.nGenerated >= req_.maxTokens) {
        stopReason_ = "length";
        return false;
    }
    next = token;
    return true;
}

void GenerationJob::Emit(llama_token token) {
    const llama_vocab * vocab = ctx_->model->vocab;
    char buf[256];
    int32_t n = 0;
    if (!llama_vocab_is_eog(vocab, token)) n = llama_token_to_piece(vocab, token, buf, sizeof(buf), 0, req_.special);
    stagedTokens_.push_back(token);
    if (n > 0) stagedBytes_.append(buf, n);
    produced_++;
}

void GenerationJob::Finish(GenerationResult r) {
    // The KV cache is the truth: an aborted decode may have kept some of its tokens.
    r.nPast = llama_memory_seq_pos_max(llama_get_memory(ctx_->ctx), req_.seq) + 1;
    stagedResult_ = std::move(r);
    stagedEnd_ = true;
}

void GenerationJob::Deliver() {
    const bool end = stagedEnd_;
    if (stagedTokens_.empty() && !end) return;
    LoopQueue * queue = queue_;
    bool post;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        pendingTokens_.insert(pendingTokens_.end(), stagedTokens_.begin(), stagedTokens_.end());
        pendingBytes_.append(stagedBytes_);
        stagedTokens_.clear();
        stagedBytes_.clear();
        if (end) {
            done_ = std::move(stagedResult_);
            finished_ = true;
            detached.store(true);
        }
        post = !scheduled_;  // else the job is in the queue and takes these along
        scheduled_ = true;
    }
    // Once the end is handed over and the lock let go, the main thread may free the job at any
    // time: only the queue is used from here (it lives until every job is stopped).
    if (post) queue->Post(this);
}

void GenerationJob::ReleaseSlots() {
    ctx_->scheduler->Release(req_.seq);
    sampler_->busy.store(false);
}

void GenerationJob::OnLoop(Napi::Env env) {
    std::vector<llama_token> tokens;
    std::string bytes;
    bool finished;
    GenerationResult done;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        tokens.swap(pendingTokens_);
        bytes.swap(pendingBytes_);
        scheduled_ = false;
        finished = finished_ && !delivered_;
        if (finished) {
            delivered_ = true;
            done = done_;
        }
    }
    // the sequence and sampler are free for the next generation before JS hears of the end
    if (finished) ReleaseSlots();
    if (!tokens.empty() || finished) {
        try {
            Napi::HandleScope scope(env);
            Napi::Int32Array t = Napi::Int32Array::New(env, tokens.size());
            std::copy(tokens.begin(), tokens.end(), t.Data());
            Napi::Uint8Array b = Napi::Uint8Array::New(env, bytes.size());
            std::copy(bytes.begin(), bytes.end(), b.Data());
            Napi::Value doneValue = env.Null();
            Napi::Value errorValue = env.Undefined();
            if (finished) {
                Napi::Object d = Napi::Object::New(env);
                d.Set("finishReason", done.finishReason.empty() ? Napi::Value(env.Null()) : Napi::String::New(env, done.finishReason));
                d.Set("nPast", done.nPast);
                d.Set("nPromptTokens", done.nPromptTokens);
                d.Set("nGenerated", done.nGenerated);
                d.Set("promptMs", done.promptMs);
                d.Set("generateMs", done.generateMs);
                d.Set("draftTokens", done.draftTokens);
                d.Set("acceptedTokens", done.acceptedTokens);
                doneValue = d;
                if (!done.errorCode.empty()) errorValue = MakeError(env, done.errorCode, done.errorMessage).Value();
            }
            // a callback scope: the promises JS settles here run their continuations after it
            CallBack(env, onEvent_, *async_, {t, b, doneValue, errorValue});
        } catch (const Napi::Error &) {
            // The TypeScript receiver never throws; this is an environment shutting down, where
            // nothing can be delivered and no exception may escape into the event loop.
        }
    }
    if (finished) {
        queue_->Unregister(this);
        control_.release();
        delete this;
    }
}

void GenerationJob::Stop() {
    cancelled_.store(true);
    // after Detach the scheduler neither steps nor delivers the job
    ctx_->scheduler->Detach(this);
}

void GenerationJob::Teardown() {
    if (!delivered_) ReleaseSlots();
    control_.release();
    delete this;
}

}  // namespace hermes3
