// One generation of one sequence: its request, sampler, state between decode steps, and the path
// that hands tokens and their bytes to JS through the environment's loop queue (loop_queue.h). The context's
// scheduler (scheduler.h) decodes it together with the other sequences of the context. The
// compute thread stages each step's tokens; the scheduler thread delivers them after the step.
// Tokens that JS has not yet taken are coalesced into one chunk, and the scheduler skips the
// sequence while JS is more than `window` tokens behind (backpressure).
#pragma once

#include "common.h"
#include "handles.h"
#include "loop_queue.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hermes3 {

struct GenerationRequest {
    llama_seq_id seq = 0;
    int32_t keep = 0;                 // KV positions kept; everything after is removed first
    int32_t promptEnd = 0;            // the prompt is evaluated at positions keep .. promptEnd - 1
    int32_t maxTokens = 0;            // 0: evaluate the input only
    int32_t window = 256;             // tokens JS may fall behind before the sequence pauses
    bool special = true;              // render control tokens as text
};

struct GenerationResult {
    std::string finishReason;
    std::string errorCode;
    std::string errorMessage;
    int32_t nPast = 0;
    int32_t nPromptTokens = 0;
    int32_t nGenerated = 0;
    double promptMs = 0;
    double generateMs = 0;
    int32_t draftTokens = 0;      // speculative tokens proposed
    int32_t acceptedTokens = 0;   // of which the target model agreed with
};

double NowMs();

class GenerationJob final : public LoopItem {
  public:
    // generate(seq, keep, tokens, sampler, options, control, onEvent): queues the generation of
    // the sequence `tokens`, of which the first `keep` are in its KV cache, and returns.
    // onEvent(tokens: Int32Array, bytes: Uint8Array, done: null | { finishReason, nPast, timings }, error?)
    // The job owns references to the context and sampler state, so neither is freed under it.
    static Napi::Value Start(const Napi::CallbackInfo & info, const std::shared_ptr<ContextHandle> & ctx);

    bool Cancelled() const { return cancelled_.load() || control_.aborted(); }

    // ---- compute thread (during a step) ----
    const GenerationRequest & Request() const { return req_; }
    // JS has taken enough of the tokens produced to let the sequence go on
    bool HasCredit() const { return produced_ - control_.consumed() < req_.window; }
    // Samples the token at batch index idx, stages it for JS; true when the generation goes on.
    bool SampleAndEmit(int32_t idx);
    // Ends the generation (result.nPast is read from the KV cache here); the end is staged.
    void Finish(GenerationResult result);

    // ---- scheduler thread (after a step) ----
    // Hands the staged tokens, and the end if staged, to JS. After it has handed the end, the job
    // must not be used by the scheduler: the main thread may free it at any time from then on.
    // Runs under the scheduler's step lock, which Scheduler::Detach takes (Stop relies on it).
    void Deliver();
    // Reason to end the generation after its last token, or empty.
    const std::string & StopReason() const { return stopReason_; }

    std::vector<llama_token> history;  // every token of the sequence, by position
    std::vector<llama_token> drafts;   // speculative tokens to follow `next` in this step
    llama_pos pos = 0;          // position of the next token to decode (the prompt's while < promptEnd)
    llama_token next = -1;      // sampled token to decode next (generating phase)
    bool generating = false;    // the input has been decoded
    int32_t batchTokens = 0;    // tokens this job has in the step being decoded
    int32_t outIdx = -1;        // batch index of its logits in that step, -1: none
    double t0 = 0;              // admitted
    double t1 = 0;              // input decoded
    double lastEmitMs = 0;      // when its last token was handed to JS
    GenerationResult result;
    std::atomic<bool> detached{false};  // the scheduler has let go of the job

    // ---- main thread (LoopItem) ----
    void OnLoop(Napi::Env env) override;
    void Stop() override;
    void Teardown() override;

  private:
    // the sequence and sampler are free for the next generation
    void ReleaseSlots();

    void Emit(llama_token token);
    llama_token Sample(int32_t idx);

    std::shared_ptr<ContextHandle> ctx_;
    std::shared_ptr<SamplerHandle> sampler_;
    GenerationRequest req_;
    ControlBlock control_;
    LoopQueue * queue_ = nullptr;
    Napi::FunctionReference onEvent_;
    std::unique_ptr<Napi::AsyncContext> async_;
    std::vector<llama_token_data> candidates_;
    std::atomic<bool> cancelled_{false};
    int64_t produced_ = 0;            // tokens emitted (compute thread)
    std::string stopReason_;

    // staged by the compute thread, delivered by the scheduler thread (one after the other)
    std::vector<llama_token> stagedTokens_;
    std::string stagedBytes_;
    bool stagedEnd_ = false;
    GenerationResult stagedResult_;

    std::mutex mutex_;  // the scheduler thread and the main thread (never the compute thread), never held while signalling
    std::vector<llama_token> pendingTokens_;
    std::string pendingBytes_;
    bool scheduled_ = false;
    bool finished_ = false;
    bool delivered_ = false;
    GenerationResult done_;
};

}  // namespace hermes3
