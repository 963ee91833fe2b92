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
    GenerationJob * raw = job.get();
    job->tsfn_ = Tsfn::New(env, info[6].As<Napi::Function>(), "hermes3:generate", 0, 1, raw, OnFinalize, (void *) nullptr);
    job.release();  // owned by the thread-safe function from here: OnFinalize deletes it
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
    bool call;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        pendingTokens_.insert(pendingTokens_.end(), stagedTokens_.begin(), stagedTokens_.end());
        pendingBytes_.append(stagedBytes_);
        if (end) {
            done_ = std::move(stagedResult_);
            finished_ = true;
        }
        call = !scheduled_ || end;
        scheduled_ = true;
    }
    stagedTokens_.clear();
    stagedBytes_.clear();
    if (end) detached.store(true);
    if (call) tsfn_.NonBlockingCall();
    if (end) tsfn_.Release();  // the finalizer (OnFinalize) may delete the job from here
}

void GenerationJob::OnCall(Napi::Env env, Napi::Function fn, GenerationJob * job, void *) {
    // At environment teardown node runs the finalizer (which deletes the job) before it drains
    // the queue with a null env: the job must not be touched then.
    if (env == nullptr) return;
    std::vector<llama_token> tokens;
    std::string bytes;
    bool finished;
    GenerationResult done;
    {
        std::lock_guard<std::mutex> lock(job->mutex_);
        tokens.swap(job->pendingTokens_);
        bytes.swap(job->pendingBytes_);
        job->scheduled_ = false;
        finished = job->finished_ && !job->delivered_;
        if (finished) {
            job->delivered_ = true;
            done = job->done_;
        }
    }
    if (finished) {
        // the sequence and sampler are free for the next generation before JS hears of the end
        job->ctx_->scheduler->Release(job->req_.seq);
        job->sampler_->busy.store(false);
    }
    if (tokens.empty() && !finished) return;
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
        fn.Call({t, b, doneValue, errorValue});
    } catch (const Napi::Error &) {
        // The TypeScript receiver never throws; this is an environment shutting down, where
        // nothing can be delivered and no exception may escape into the event loop.
    }
}

void GenerationJob::OnFinalize(Napi::Env, void *, GenerationJob * job) {
    job->cancelled_.store(true);
    // Only at environment teardown is a job still held by the scheduler here.
    if (!job->detached.load()) job->ctx_->scheduler->Detach(job);
    if (!job->delivered_) job->ctx_->scheduler->Release(job->req_.seq);
    job->sampler_->busy.store(false);
    job->control_.release();
    delete job;
}

}  // namespace hermes3
