#include "scheduler.h"

#include "generation.h"

#include <algorithm>
#include <chrono>

namespace hermes3 {

Scheduler::Scheduler(llama_context * ctx, const DraftConfig & draft)
    : ctx_(ctx), nBatch_((int32_t) std::max<uint32_t>(llama_n_batch(ctx), 1)),
      nSeq_((int32_t) llama_n_seq_max(ctx)), busy_(std::make_unique<std::atomic<bool>[]>(llama_n_seq_max(ctx))),
      drafter_(draft, (int32_t) std::max<uint32_t>(llama_n_batch(ctx), 1), (int32_t) llama_n_seq_max(ctx)) {
    batch_ = llama_batch_init(nBatch_, 0, 1);
}

void Scheduler::Start(Priority compute) {
    compute_ = std::make_unique<LoweredThread>(compute);
    thread_ = std::thread([this, compute]() {
        NameThisThread("hermes3-sched");
        // at 'normal' it decodes itself, in the class it was started in (SCHED_OTHER, RunAt)
        if (compute == Priority::Low) BatchThisThread();
        Loop();
    });
}

// Jobs and commands hold the context alive, so none is left when the scheduler is destroyed.
Scheduler::~Scheduler() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    stopping_.store(true);
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    compute_.reset();
    llama_batch_free(batch_);
}

void Scheduler::Submit(GenerationJob * job) {
    const llama_seq_id seq = job->Request().seq;
    if (seq >= 0 && seq < nSeq_) busy_[seq].store(true);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        incoming_.push_back(job);
    }
    cv_.notify_all();
}

void Scheduler::Release(llama_seq_id seq) {
    if (seq >= 0 && seq < nSeq_) busy_[seq].store(false);
}

bool Scheduler::Busy(llama_seq_id seq) {
    return seq >= 0 && seq < nSeq_ && busy_[seq].load();
}

bool Scheduler::AnyBusy() {
    for (int32_t seq = 0; seq < nSeq_; seq++) {
        if (busy_[seq].load()) return true;
    }
    return false;
}

void Scheduler::Detach(GenerationJob * job) {
    std::lock_guard<std::mutex> step(stepMutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        incoming_.erase(std::remove(incoming_.begin(), incoming_.end(), job), incoming_.end());
    }
    jobs_.erase(std::remove(jobs_.begin(), jobs_.end(), job), jobs_.end());
}

void Scheduler::Call(const std::function<void()> & fn) {
    Command command{&fn, nullptr, false};
    std::unique_lock<std::mutex> lock(mutex_);
    commands_.push_back(&command);
    cv_.notify_all();
    commandDone_.wait(lock, [&]() { return command.done; });
    if (command.error) std::rethrow_exception(command.error);
}

bool Scheduler::Aborting() const {
    if (stopping_.load()) return true;
    if (inBatch_.empty()) return false;
    for (const GenerationJob * job : inBatch_) {
        if (!job->Cancelled()) return false;
    }
    return true;
}

void Scheduler::Loop() {
    std::vector<Command *> commands;
    std::vector<GenerationJob *> arrived;
    const std::function<void()> runCommands = [&]() {
        for (Command * command : commands) {
            try {
                (*command->fn)();
            } catch (...) {
                command->error = std::current_exception();
            }
        }
    };
    bool stepped = false;
    const std::function<void()> step = [&]() { stepped = Step(arrived); };
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (stop_) return;
            commands.assign(commands_.begin(), commands_.end());
            commands_.clear();
        }
        if (!commands.empty()) {
            compute_->Run(runCommands);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                for (Command * command : commands) command->done = true;
            }
            commandDone_.notify_all();
        }
        {
            std::lock_guard<std::mutex> hold(stepMutex_);
            {
                std::lock_guard<std::mutex> lock(mutex_);
                arrived.swap(incoming_);
            }
            compute_->Run(step);
            arrived.clear();
            Deliver();
        }
        if (stepped) continue;
        std::unique_lock<std::mutex> lock(mutex_);
        if (stop_) return;
        if (!commands_.empty() || !incoming_.empty()) continue;
        if (jobs_.empty()) {
            cv_.wait(lock);  // nothing to do until a job or a command arrives
            // requests made together arrive microseconds apart, or milliseconds on a loaded
            // machine: let them all in, so that their prompts share the first step (wait while
            // they keep coming, 2 ms after the last one, 10 ms at most). Once every sequence
            // has a request (always, with one sequence) no other can come: no wait.
            for (int waited = 0; !incoming_.empty() && (int32_t) incoming_.size() < nSeq_ && waited < 10; waited += 2) {
                const size_t seen = incoming_.size();
                lock.unlock();
                std::this_thread::sleep_for(std::chrono::milliseconds(2));
                lock.lock();
                if (incoming_.size() == seen) break;
            }
        } else {
            // every job waits for JS to take its tokens: poll their credit and cancellation
            cv_.wait_for(lock, std::chrono::milliseconds(1));
        }
    }
}

void Scheduler::Deliver() {
    for (GenerationJob * job : jobs_) job->Deliver();
    for (GenerationJob * job : completed_) job->Deliver();  // the job belongs to JS from here
    completed_.clear();
}

void Scheduler::Admit(GenerationJob * job) {
    const GenerationRequest & req = job->Request();
    job->t0 = NowMs();
    job->pos = req.keep;
    jobs_.push_back(job);
    auto it = jobs_.end() - 1;
    drafter_.Truncate(req.seq, req.keep);
    if (!llama_memory_seq_rm(llama_get_memory(ctx_), req.seq, req.keep, -1)) {
        job->result.errorCode = "ERR_DECODE";
        job->result.errorMessage = "could not remove cached tokens from the sequence";
        Complete(job, it);
    } else if (req.promptEnd == req.keep) {
        job->result.errorCode = "ERR_INVALID_ARG";
        job->result.errorMessage = "nothing to evaluate: the input is empty";
        Complete(job, it);
    }
}

void Scheduler::Complete(GenerationJob * job, std::vector<GenerationJob *>::iterator & it) {
    if (job->generating) job->result.generateMs = NowMs() - job->t1;
    it = jobs_.erase(it);
    job->Finish(std::move(job->result));
    completed_.push_back(job);
}

int32_t Scheduler::PromptBudget(int32_t room) const {
    if (room <= 0) return 0;
    // until a mixed step has been measured, one token: small batches cost far more per token
    // than the prompt-only steps suggest (on a CPU, two tokens cost about twice one)
    if (genStepMs_ <= 0 || promptTokenMs_ <= 0) return std::min(room, 1);
    // a step with k prompt tokens costs about genStepMs_ + k * promptTokenMs_
    // (with a margin for the noise of the estimate)
    const double k = 0.8 * genStepMs_ / promptTokenMs_;
    return (int32_t) std::clamp<double>(k, 1.0, (double) room);
}

bool Scheduler::Step(const std::vector<GenerationJob *> & arrived) {
    for (GenerationJob * job : arrived) Admit(job);
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        GenerationJob * job = *it;
        if (job->Cancelled()) {
            job->result.finishReason = "abort";
            Complete(job, it);
        } else {
            ++it;
        }
    }
    if (jobs_.empty()) return false;

    batch_.n_tokens = 0;
    inBatch_.clear();
    auto add = [&](GenerationJob * job, llama_token token, llama_pos pos, bool output) {
        const int32_t k = batch_.n_tokens++;
        batch_.token[k] = token;
        batch_.pos[k] = pos;
        batch_.n_seq_id[k] = 1;
        batch_.seq_id[k][0] = job->Request().seq;
        batch_.logits[k] = output;
        job->batchTokens++;
    };
    // the next token of every generating sequence that JS keeps up with, and its drafts
    std::vector<GenerationJob *> prompts;
    std::vector<GenerationJob *> gens;
    // a sequence whose consumer is a moment behind still counts as generating: a prompt chunk
    // sized for an idle context would stall it when it resumes
    const double recent = NowMs() - std::max(50.0, 4 * genStepMs_);
    bool generating = false;
    for (GenerationJob * job : jobs_) {
        job->batchTokens = 0;
        job->outIdx = -1;
        job->drafts.clear();
        if (!job->generating) {
            prompts.push_back(job);
        } else if (job->HasCredit() && (int32_t) gens.size() < nBatch_) {
            gens.push_back(job);
            generating = true;
        } else if (job->lastEmitMs > recent) {
            generating = true;
        }
    }
    const double stepStart = NowMs();
    const bool drafting = drafter_.UseThisStep() && !gens.empty();
    if (drafting) {
        const int32_t nCtxSeq = (int32_t) llama_n_ctx_seq(ctx_);
        const int32_t room = (nBatch_ - (int32_t) gens.size()) / (int32_t) gens.size();
        std::vector<int32_t> limits;
        for (GenerationJob * job : gens) {
            const int32_t left = job->Request().maxTokens - job->result.nGenerated - 1;
            limits.push_back(std::max(0, std::min({drafter_.NDraft(), room, left, nCtxSeq - job->pos - 2})));
        }
        drafter_.Draft(gens, limits);
    }
    int32_t nGen = 0;
    for (GenerationJob * job : gens) {
        job->outIdx = batch_.n_tokens;  // logits of the pending token, then of each draft
        add(job, job->next, job->pos, true);
        for (size_t i = 0; i < job->drafts.size(); i++) add(job, job->drafts[i], job->pos + 1 + (llama_pos) i, true);
        inBatch_.push_back(job);
        nGen += job->batchTokens;
    }
    // prompt chunks: the room left, shared evenly, starting with a different prompt each step
    if (!prompts.empty()) {
        const int32_t room = nBatch_ - nGen;
        int32_t left = generating ? PromptBudget(room) : room;
        const size_t n = prompts.size();
        const size_t first = rotate_++ % n;
        std::vector<int32_t> share(n, 0);
        auto remaining = [&](size_t i) {
            return prompts[i]->Request().promptEnd - prompts[i]->pos - share[i];
        };
        while (left > 0) {
            int32_t open = 0;
            for (size_t i = 0; i < n; i++) open += remaining(i) > 0;
            if (open == 0) break;
            const int32_t each = std::max(1, left / open);
            for (size_t k = 0; k < n && left > 0; k++) {
                const size_t i = (first + k) % n;
                const int32_t give = std::min({each, remaining(i), left});
                if (give <= 0) continue;
                share[i] += give;
                left -= give;
            }
        }
        for (size_t k = 0; k < n; k++) {
            const size_t i = (first + k) % n;
            if (share[i] == 0) continue;
            GenerationJob * job = prompts[i];
            for (int32_t j = 0; j < share[i]; j++) {
                const llama_pos at = job->pos + j;
                const bool last = at + 1 == job->Request().promptEnd;  // its logits give the first token
                if (last) job->outIdx = batch_.n_tokens;
                add(job, job->history[at], at, last);
            }
            inBatch_.push_back(job);
        }
    }
    if (batch_.n_tokens == 0) return false;

    const double t = NowMs();
    int32_t rc = -100;
    // after a backend failed (an rpc-server that went away) the context's state is unknown:
    // every later step fails too, with the same reason
    if (failure_.empty()) {
        std::unique_lock<std::mutex> reserving;
        if (std::mutex * lock = reserveLock_.exchange(nullptr)) reserving = std::unique_lock<std::mutex>(*lock);
        try {
            rc = llama_decode(ctx_, batch_);
            // compute runs asynchronously: a backend failure surfaces at the synchronize, here
            // rather than in the sampling that would wait for it
            if (rc == 0) llama_synchronize(ctx_);
        } catch (const std::exception & e) {
            rc = -100;
            failure_ = e.what();
        }
    }
    const double ms = NowMs() - t;
    if (rc != 0) {
        // 2: aborted, which happens only when every job of the batch was cancelled; they end at
        // the start of the next step, with what the KV cache kept
        if (rc != 2) Fail(rc);
        inBatch_.clear();
        return true;
    }
    steps++;
    tokens += batch_.n_tokens;
    if ((int32_t) inBatch_.size() > widest.load()) widest.store((int32_t) inBatch_.size());
    const int32_t nPrompt = batch_.n_tokens - nGen;
    if (nPrompt == 0 && !drafting) {
        genStepMs_ = genStepMs_ > 0 ? 0.8 * genStepMs_ + 0.2 * ms : ms;
    } else if (nPrompt > 0 && nGen > 0 && genStepMs_ > 0 && !drafting) {
        // the cost of a prompt token in a step shared with generating sequences
        const double perToken = std::max(1e-3, (ms - genStepMs_) / nPrompt);
        promptTokenMs_ = promptTokenMs_ > 0 ? 0.7 * promptTokenMs_ + 0.3 * perToken : perToken;
    }

    int32_t emitted = 0;
    for (auto it = jobs_.begin(); it != jobs_.end();) {
        GenerationJob * job = *it;
        if (job->batchTokens == 0) {
            ++it;
            continue;
        }
        const int32_t before = job->result.nGenerated;
        bool goOn = true;
        if (!job->generating) {
            job->pos += job->batchTokens;
            if (job->pos == job->Request().promptEnd) {
                job->generating = true;
                job->t1 = NowMs();
                job->result.promptMs = job->t1 - job->t0;
                job->result.nPromptTokens = job->pos - job->Request().keep;
                goOn = job->Request().maxTokens > 0 && job->SampleAndEmit(job->outIdx);
                if (job->Request().maxTokens == 0) job->result.finishReason = "length";
            }
        } else {
            goOn = Accept(job);
            emitted += job->result.nGenerated - before;
        }
        if (goOn) {
            ++it;
            continue;
        }
        if (job->result.finishReason.empty()) job->result.finishReason = job->StopReason();
        Complete(job, it);
    }
    // the speed of generation steps, with and without drafts (steps with prompt tokens differ)
    if (nPrompt == 0 && emitted > 0) drafter_.Record(drafting, emitted, NowMs() - stepStart);
    inBatch_.clear();
    return true;
}

bool Scheduler::Accept(GenerationJob * job) {
    const int32_t k = (int32_t) job->drafts.size();
    int32_t j = 0;
    bool goOn;
    for (;;) {
        goOn = job->SampleAndEmit(job->outIdx + j);
        if (!goOn || j >= k || job->next != job->drafts[j]) break;
        j++;
    }
    // the pending token and the j drafts the target agreed with stay in the cache
    const llama_pos end = job->pos + j + 1;
    if (k > 0) {
        job->result.draftTokens += k;
        job->result.acceptedTokens += j;
        llama_memory_seq_rm(llama_get_memory(ctx_), job->Request().seq, end, -1);
        drafter_.Truncate(job->Request().seq, end);
    }
    job->pos = end;
    return goOn;
}

}  // namespace hermes3
