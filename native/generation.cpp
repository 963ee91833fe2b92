#include "generation.h"

#include "sampler.h"

#include <chrono>
#include <cmath>

namespace hermes3 {
namespace {

double NowMs() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Napi::Value GenerationJob::Start(const Napi::CallbackInfo & info, const std::shared_ptr<ContextHandle> & ctx) {
    Napi::Env env = info.Env();
    const std::shared_ptr<SamplerHandle> & sampler = SamplerWrap::Unwrap(info[3].As<Napi::Object>())->Require(env);
    if (sampler->busy.load()) Throw(env, "ERR_BUSY", "the sampler is in use by another generation");
    if (sampler->model != ctx->model) Throw(env, "ERR_INVALID_ARG", "the sampler was made for another model");

    auto job = std::make_unique<GenerationJob>();
    job->ctx_ = ctx;
    job->sampler_ = sampler;
    job->req_.seq = info[0].As<Napi::Number>().Int32Value();
    job->req_.keep = info[1].As<Napi::Number>().Int32Value();
    Napi::Int32Array input = info[2].As<Napi::Int32Array>();
    job->req_.input.assign(input.Data(), input.Data() + input.ElementLength());
    Napi::Object opts = info[4].As<Napi::Object>();
    job->req_.maxTokens = opts.Get("maxTokens").As<Napi::Number>().Int32Value();
    job->req_.window = opts.Get("window").As<Napi::Number>().Int32Value();
    job->req_.special = opts.Get("special").ToBoolean();
    job->control_ = ControlBlock(info[5].As<Napi::Int32Array>());
    GenerationJob * raw = job.get();
    job->tsfn_ = Tsfn::New(env, info[6].As<Napi::Function>(), "hermes3:generate", 0, 1, raw, OnFinalize, (void *) nullptr);
    job.release();  // owned by the thread-safe function from here: OnFinalize deletes it

    sampler->busy.store(true);
    ctx->active.store(raw);
    raw->thread_ = std::thread([raw]() { raw->Run(); });
    return env.Undefined();
}

// Waits while JS is more than `window` tokens behind. Polling is cheap here: it only happens
// when the consumer is slower than generation, and it keeps abort responsive.
void GenerationJob::WaitForCredit() {
    while (!Cancelled() && produced_ - control_.consumed() >= req_.window) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
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

void GenerationJob::Emit(llama_token token) {
    const llama_vocab * vocab = ctx_->model->vocab;
    char buf[256];
    int32_t n = 0;
    if (!llama_vocab_is_eog(vocab, token)) n = llama_token_to_piece(vocab, token, buf, sizeof(buf), 0, req_.special);
    bool schedule = false;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        pendingTokens_.push_back(token);
        if (n > 0) pendingBytes_.append(buf, n);
        produced_++;
        if (!scheduled_) scheduled_ = schedule = true;
    }
    if (schedule) tsfn_.NonBlockingCall();
}

void GenerationJob::Finish(Done done) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        done_ = std::move(done);
        finished_ = true;
        scheduled_ = true;
    }
    tsfn_.NonBlockingCall();
    tsfn_.Release();
}

bool GenerationJob::DecodeInput(llama_batch & batch, Done & done) {
    llama_context * lctx = ctx_->ctx;
    const int32_t n_batch = (int32_t) llama_n_batch(lctx);
    const auto & input = req_.input;
    for (size_t start = 0; start < input.size(); start += n_batch) {
        if (Cancelled()) {
            done.finishReason = "abort";
            return false;
        }
        const size_t end = std::min(input.size(), start + (size_t) n_batch);
        batch.n_tokens = 0;
        for (size_t i = start; i < end; i++) {
            const int32_t k = batch.n_tokens++;
            batch.token[k] = input[i];
            batch.pos[k] = req_.keep + (llama_pos) i;
            batch.n_seq_id[k] = 1;
            batch.seq_id[k][0] = req_.seq;
            batch.logits[k] = i + 1 == input.size();
        }
        const int32_t rc = llama_decode(lctx, batch);
        if (rc == 2) {
            done.finishReason = "abort";
            return false;
        }
        if (rc != 0) {
            done.errorCode = rc == 1 ? "ERR_CONTEXT_FULL" : "ERR_DECODE";
            done.errorMessage = rc == 1 ? "the context is full: no KV cache slot for the batch (use a larger nCtx or a shorter prompt)"
                                        : "llama_decode failed with code " + std::to_string(rc);
            return false;
        }
    }
    return true;
}

void GenerationJob::Run() {
    Done done;
    llama_context * lctx = ctx_->ctx;
    llama_memory_t mem = llama_get_memory(lctx);
    const llama_vocab * vocab = ctx_->model->vocab;
    llama_batch batch = llama_batch_init((int32_t) std::max<uint32_t>(llama_n_batch(lctx), 1), 0, 1);
    const double t0 = NowMs();

    if (!llama_memory_seq_rm(mem, req_.seq, req_.keep, -1)) {
        done.errorCode = "ERR_DECODE";
        done.errorMessage = "could not remove cached tokens from the sequence";
    } else if (req_.input.empty()) {
        done.errorCode = "ERR_INVALID_ARG";
        done.errorMessage = "nothing to evaluate: the input is empty";
    } else if (DecodeInput(batch, done)) {
        done.nPromptTokens = (int32_t) req_.input.size();
        const double t1 = NowMs();
        done.promptMs = t1 - t0;
        llama_pos pos = req_.keep + (llama_pos) req_.input.size();
        int32_t logits_idx = batch.n_tokens - 1;
        while (true) {
            if (done.nGenerated >= req_.maxTokens) {
                done.finishReason = "length";
                break;
            }
            if (Cancelled()) {
                done.finishReason = "abort";
                break;
            }
            const llama_token token = Sample(logits_idx);
            done.nGenerated++;
            Emit(token);
            if (llama_vocab_is_eog(vocab, token)) {
                done.finishReason = "stop";
                break;
            }
            if (done.nGenerated >= req_.maxTokens) {
                done.finishReason = "length";
                break;
            }
            WaitForCredit();
            if (Cancelled()) {
                done.finishReason = "abort";
                break;
            }
            batch.n_tokens = 1;
            batch.token[0] = token;
            batch.pos[0] = pos++;
            batch.n_seq_id[0] = 1;
            batch.seq_id[0][0] = req_.seq;
            batch.logits[0] = true;
            logits_idx = 0;
            const int32_t rc = llama_decode(lctx, batch);
            if (rc == 2) {
                done.finishReason = "abort";
                break;
            }
            if (rc != 0) {
                done.errorCode = rc == 1 ? "ERR_CONTEXT_FULL" : "ERR_DECODE";
                done.errorMessage = rc == 1 ? "the context is full after " + std::to_string(done.nGenerated) + " generated tokens (use a larger nCtx)"
                                            : "llama_decode failed with code " + std::to_string(rc);
                break;
            }
        }
        done.generateMs = NowMs() - t1;
    }
    llama_batch_free(batch);
    // The KV cache is the truth: an aborted decode may have kept some of its tokens.
    done.nPast = llama_memory_seq_pos_max(mem, req_.seq) + 1;
    Finish(std::move(done));
}

void GenerationJob::OnCall(Napi::Env env, Napi::Function fn, GenerationJob * job, void *) {
    // At environment teardown node runs the finalizer (which deletes the job) before it drains
    // the queue with a null env: the job must not be touched then.
    if (env == nullptr) return;
    std::vector<llama_token> tokens;
    std::string bytes;
    bool finished;
    Done done;
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
        // the context and sampler are free for the next generation before JS hears of the end
        job->ctx_->active.store(nullptr);
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
    if (job->thread_.joinable()) job->thread_.join();
    GenerationJob * expected = job;
    job->ctx_->active.compare_exchange_strong(expected, nullptr);
    job->sampler_->busy.store(false);
    job->control_.release();
    delete job;
}

}  // namespace hermes3
