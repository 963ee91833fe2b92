// What a failed decode step does to the jobs in it: which of them end, with which error.
#include "scheduler.h"

#include "generation.h"

#include <string>

namespace hermes3 {

void Scheduler::Fail(int32_t rc) {
    llama_memory_t mem = llama_get_memory(ctx_);
    bool hasPrompt = false;
    for (const GenerationJob * job : inBatch_) hasPrompt |= !job->generating;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        GenerationJob * job = *it;
        const llama_seq_id seq = job->Request().seq;
        // No KV slot for the batch: the prompts that came with it fail, generating sequences
        // whose cache is untouched go on.
        const bool untouched = llama_memory_seq_pos_max(mem, seq) + 1 == job->pos;
        if (job->batchTokens == 0 || (rc == 1 && hasPrompt && job->generating && untouched)) {
            ++it;
            continue;
        }
        GenerationResult & r = job->result;
        if (rc == 1) {
            r.errorCode = "ERR_CONTEXT_FULL";
            r.errorMessage = job->generating
                ? "the context is full after " + std::to_string(r.nGenerated) + " generated tokens: its sequences hold " +
                      std::to_string(llama_n_ctx(ctx_)) + " tokens together (use a larger nCtx, or fewer sequences at once)"
                : "the context is full: no KV cache slot for the prompt (use a larger nCtx, a shorter prompt, or fewer sequences at once)";
        } else {
            const bool rpc = rc == -100 && failure_.find("RPC") != std::string::npos;
            r.errorCode = rpc ? "ERR_RPC_CONNECT" : "ERR_DECODE";
            r.errorMessage = rc == -100 ? "llama.cpp failed while decoding: " + failure_ +
                                              (rpc ? "; this context can no longer be used: dispose the model and load it again once the rpc-server is back" : "")
                                        : "llama_decode failed with code " + std::to_string(rc);
        }
        Complete(job, it);
    }
}

}  // namespace hermes3
