// Continuous batching: one scheduler per context owns its llama_context. Each step it gathers
// the next token of every generating sequence and chunks of the prompts that have arrived
// (within nBatch, shared fairly), decodes them in one llama_decode call, samples each sequence
// with its own sampler and hands each its tokens. Sequences join and leave between steps; other
// work on the context (removing tokens, saving and restoring a sequence) runs between steps, so
// nothing touches the llama_context concurrently.
//
// Two threads: the scheduler thread, of normal priority, takes requests and hands tokens to JS;
// the compute thread (lowered at threadPriority 'low') decodes, samples and runs the commands,
// while the scheduler thread waits. Every lock the event loop takes (the request queue, each
// generation's tokens) is shared with the scheduler thread only, and held for no more than a
// copy: a lowered thread holding one of them could be kept off the cores by any other thread,
// and the event loop would wait for it. Tokens reach JS through the loop queue (loop_queue.h),
// which signals the event loop only after it has let go of everything.
#pragma once

#include "llama.h"
#include "priority.h"
#include "speculative.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace hermes3 {

class GenerationJob;

class Scheduler {
  public:
    Scheduler(llama_context * ctx, const DraftConfig & draft);
    ~Scheduler();
    Scheduler(const Scheduler &) = delete;
    Scheduler & operator=(const Scheduler &) = delete;

    // Once, from a thread of normal priority (a lowered thread's children inherit its class):
    // starts the scheduler thread, and the compute thread at `compute` (the context's priority).
    void Start(Priority compute);
    // Main thread: marks the job's sequence busy and queues the job for the next step.
    void Submit(GenerationJob * job);
    // Main thread: the generation of `seq` has been delivered to JS; the sequence is free again.
    void Release(llama_seq_id seq);
    bool Busy(llama_seq_id seq);
    bool AnyBusy();
    // Any thread but the scheduler's: forgets a job that is being destroyed (environment teardown).
    // Waits for the step in progress, so the job is never used after this returns.
    void Detach(GenerationJob * job);
    // Any thread but the scheduler's (a worker's): runs fn on the scheduler thread between
    // two steps and waits for it. Exceptions thrown by fn are rethrown here.
    void Call(const std::function<void()> & fn);
    // The abort callback of the llama_context: true when every sequence of the batch being
    // decoded has been cancelled, or the scheduler is stopping.
    bool Aborting() const;
    // Scheduler thread (inside Call): the sequence now holds `end` positions; speculative
    // drafts cached past them are dropped.
    void Truncated(llama_seq_id seq, llama_pos end) { drafter_.Truncate(seq, end); }
    // The context's adapters changed: its next decode sizes the graph again, reading the model's
    // list of adapters, and holds `lock` (the model's adapter lock) while it does.
    void ReserveUnder(std::mutex * lock) { reserveLock_.store(lock); }

    // decode steps and tokens decoded so far, and the most sequences one step has served
    std::atomic<int64_t> steps{0};
    std::atomic<int64_t> tokens{0};
    std::atomic<int32_t> widest{0};

  private:
    struct Command {
        const std::function<void()> * fn;
        std::exception_ptr error;
        bool done = false;
    };

    void Loop();
    // Compute thread: one decode step with the jobs that arrived since the last; false when there
    // was nothing to decode.
    bool Step(const std::vector<GenerationJob *> & arrived);
    // Scheduler thread, after a step: hands the tokens and ends staged by the step to JS.
    void Deliver();
    void Admit(GenerationJob * job);
    void Complete(GenerationJob * job, std::vector<GenerationJob *>::iterator & it);
    // Ends the jobs of a failed decode (llama_decode's return code rc).
    void Fail(int32_t rc);
    // Prompt tokens a step may add while other sequences generate, so that no token of theirs
    // waits longer than about twice one generation step.
    int32_t PromptBudget(int32_t room) const;
    // Verifies the job's drafts against the decoded logits: samples at each position while the
    // sample equals the draft. False when the generation ends.
    bool Accept(GenerationJob * job);

    llama_context * const ctx_;
    const int32_t nBatch_;

    std::mutex mutex_;  // guards incoming_, commands_, stop_ (never taken by the compute thread)
    std::condition_variable cv_;
    std::condition_variable commandDone_;
    std::vector<GenerationJob *> incoming_;
    std::deque<Command *> commands_;
    const int32_t nSeq_;
    std::unique_ptr<std::atomic<bool>[]> busy_;  // per sequence: generating, until JS has the end
    bool stop_ = false;
    std::atomic<bool> stopping_{false};
    std::atomic<std::mutex *> reserveLock_{nullptr};

    std::mutex stepMutex_;  // held by the scheduler thread for a whole step and its delivery
    std::vector<GenerationJob *> jobs_;     // admitted jobs, in arrival order
    std::vector<GenerationJob *> completed_;  // jobs the step ended, to deliver
    std::vector<GenerationJob *> inBatch_;  // the jobs of the decode in progress
    std::string failure_;                     // what the last failed decode raised
    size_t rotate_ = 0;                     // first prompt served, for fairness between prompts

    // step costs, for the prompt budget (milliseconds, moving averages; 0: not measured yet)
    double genStepMs_ = 0;
    double promptTokenMs_ = 0;

    Drafter drafter_;
    llama_batch batch_;
    std::unique_ptr<LoweredThread> compute_;
    std::thread thread_;
};

}  // namespace hermes3
