// The token loop: decode the input, then sample and decode one token at a time on a dedicated
// thread, handing tokens and their bytes to JS through a thread-safe function. Tokens that JS
// has not yet taken are coalesced into one chunk, and the loop pauses when JS falls more than
// `window` tokens behind (backpressure).
#pragma once

#include "common.h"
#include "handles.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hermes3 {

struct GenerationRequest {
    llama_seq_id seq = 0;
    int32_t keep = 0;                 // KV positions kept; everything after is removed first
    std::vector<llama_token> input;   // evaluated at positions keep, keep + 1, ...
    int32_t maxTokens = 0;            // 0: evaluate the input only
    int32_t window = 256;             // tokens JS may fall behind before the loop pauses
    bool special = true;              // render control tokens as text
};

class GenerationJob {
  public:
    // generate(seq, keep, input, sampler, options, control, onEvent): starts the loop and returns.
    // onEvent(tokens: Int32Array, bytes: Uint8Array, done: null | { finishReason, nPast, timings }, error?)
    // The job owns references to the context and sampler state, so neither is freed under it.
    static Napi::Value Start(const Napi::CallbackInfo & info, const std::shared_ptr<ContextHandle> & ctx);

    bool Cancelled() const { return cancelled_.load() || control_.aborted(); }

  private:
    struct Done {
        std::string finishReason;
        std::string errorCode;
        std::string errorMessage;
        int32_t nPast = 0;
        int32_t nPromptTokens = 0;
        int32_t nGenerated = 0;
        double promptMs = 0;
        double generateMs = 0;
    };

    static void OnCall(Napi::Env env, Napi::Function fn, GenerationJob * job, void * data);
    static void OnFinalize(Napi::Env env, void * data, GenerationJob * job);
    using Tsfn = Napi::TypedThreadSafeFunction<GenerationJob, void, OnCall>;

    void Run();
    bool DecodeInput(llama_batch & batch, Done & done);
    void Emit(llama_token token);
    llama_token Sample(int32_t idx);
    void Finish(Done done);
    void WaitForCredit();

    std::shared_ptr<ContextHandle> ctx_;
    std::shared_ptr<SamplerHandle> sampler_;
    GenerationRequest req_;
    ControlBlock control_;
    Tsfn tsfn_;
    std::thread thread_;
    std::vector<llama_token_data> candidates_;
    std::atomic<bool> cancelled_{false};

    std::mutex mutex_;
    std::vector<llama_token> pendingTokens_;
    std::string pendingBytes_;
    bool scheduled_ = false;
    bool finished_ = false;
    bool delivered_ = false;
    Done done_;
    int64_t produced_ = 0;
};

}  // namespace hermes3
