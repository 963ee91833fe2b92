#include "speculative.h"

#include "generation.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace hermes3 {

std::vector<llama_token> LookupDraft(const std::vector<llama_token> & history, int32_t ngramMin, int32_t ngramMax, int32_t limit) {
    const int32_t size = (int32_t) history.size();
    for (int32_t n = std::min(ngramMax, size - 1); n >= std::max(ngramMin, 1); n--) {
        const llama_token * tail = history.data() + size - n;
        // latest earlier occurrence first: recent text predicts best
        for (int32_t start = size - n - 1; start >= 0; start--) {
            if (!std::equal(tail, tail + n, history.data() + start)) continue;
            const int32_t from = start + n;
            const int32_t count = std::min(limit, size - from);
            if (count <= 0) continue;
            return std::vector<llama_token>(history.begin() + from, history.begin() + from + count);
        }
    }
    return {};
}

Drafter::Drafter(const DraftConfig & config, int32_t nBatch, int32_t nSeqMax)
    : config_(config), nBatch_(nBatch), valid_(std::max(nSeqMax, 1), 0) {
    batch_ = llama_batch_init(std::max(nBatch, 1), 0, 1);
}

Drafter::~Drafter() { llama_batch_free(batch_); }

void Drafter::Record(bool drafted, int32_t tokens, double ms) {
    if (!config_.adaptive || !Enabled() || ms <= 0) return;
    const double rate = tokens / ms;
    if (!drafted) {
        ratePlain_ = ratePlain_ > 0 ? 0.8 * ratePlain_ + 0.2 * rate : rate;
        if (pause_ > 0) pause_--;
        return;
    }
    rateDraft_ = measured_ > 0 ? 0.7 * rateDraft_ + 0.3 * rate : rate;
    measured_++;
    if (ratePlain_ <= 0) {
        pause_ = 4;  // measure plain decoding first
        measured_ = 0;
        return;
    }
    if (measured_ < 4) return;
    if (rateDraft_ < 0.95 * ratePlain_) {
        pause_ = nextPause_;
        nextPause_ = std::min(nextPause_ * 2, 512);
        measured_ = 0;
    } else {
        nextPause_ = 16;
    }
}

void Drafter::Truncate(llama_seq_id seq, llama_pos end) {
    if (!config_.draftCtx || seq < 0 || (size_t) seq >= valid_.size()) return;
    if (valid_[seq] > end) {
        llama_memory_seq_rm(llama_get_memory(config_.draftCtx), seq, end, -1);
        valid_[seq] = end;
    }
}

// The jobs' drafts are empty on entry (the scheduler clears them every step).
void Drafter::Draft(const std::vector<GenerationJob *> & jobs, const std::vector<int32_t> & limits) {
    if (!Enabled() || jobs.empty()) return;
    if (config_.draftCtx) {
        DraftWithModel(jobs, limits);
        return;
    }
    for (size_t i = 0; i < jobs.size(); i++) {
        if (limits[i] > 0) jobs[i]->drafts = LookupDraft(jobs[i]->history, config_.ngramMin, config_.ngramMax, limits[i]);
    }
}

bool Drafter::Decode() {
    if (batch_.n_tokens == 0) return true;
    return llama_decode(config_.draftCtx, batch_) == 0;
}

// The most likely token and its probability.
static std::pair<llama_token, float> Best(const float * logits, int32_t n) {
    const float * top = std::max_element(logits, logits + n);
    double sum = 0;
    for (int32_t i = 0; i < n; i++) sum += std::exp((double) (logits[i] - *top));
    return {(llama_token) (top - logits), (float) (1.0 / sum)};
}

// Greedy drafts from the draft model. Its cache first catches up with each sequence (the
// prompt, and the tokens accepted since the last draft), then one decode per draft position
// serves every drafting sequence.
void Drafter::DraftWithModel(const std::vector<GenerationJob *> & jobs, const std::vector<int32_t> & limits) {
    llama_context * ctx = config_.draftCtx;
    const llama_vocab * vocab = llama_model_get_vocab(llama_get_model(ctx));
    const int32_t nVocab = llama_vocab_n_tokens(vocab);
    auto flush = [&]() {
        const bool ok = Decode();
        batch_.n_tokens = 0;
        return ok;
    };
    auto add = [&](llama_token token, llama_pos pos, llama_seq_id seq, bool output) {
        const int32_t k = batch_.n_tokens++;
        batch_.token[k] = token;
        batch_.pos[k] = pos;
        batch_.n_seq_id[k] = 1;
        batch_.seq_id[k][0] = seq;
        batch_.logits[k] = output;
        return k;
    };
    // catch up: positions valid_[seq] .. pos - 1 of every drafting sequence, in full batches
    batch_.n_tokens = 0;
    bool ok = true;
    std::vector<GenerationJob *> drafting;
    std::vector<int32_t> caps;
    for (size_t i = 0; i < jobs.size() && ok; i++) {
        GenerationJob * job = jobs[i];
        if (limits[i] <= 0) continue;
        const llama_seq_id seq = job->Request().seq;
        Truncate(seq, std::min<llama_pos>(valid_[seq], job->pos));
        for (llama_pos p = valid_[seq]; p < job->pos && ok; p++) {
            if (batch_.n_tokens == nBatch_) ok = flush();
            add(job->history[p], p, seq, false);
        }
        drafting.push_back(job);
        caps.push_back(limits[i]);
    }
    if (ok) ok = flush();
    // then every pending token in one batch, whose logits give the first drafts
    std::vector<int32_t> rows;
    for (GenerationJob * job : drafting) {
        const llama_seq_id seq = job->Request().seq;
        rows.push_back(add(job->history[job->pos], job->pos, seq, true));
        valid_[seq] = job->pos + 1;
    }
    if (ok) ok = flush();
    if (!ok) {
        for (GenerationJob * job : jobs) {
            const llama_seq_id seq = job->Request().seq;
            valid_[seq] = llama_n_ctx(ctx);
            Truncate(seq, 0);
            job->drafts.clear();
        }
        return;
    }
    for (int32_t step = 0; !drafting.empty(); step++) {
        std::vector<GenerationJob *> next;
        std::vector<int32_t> nextCaps;
        batch_.n_tokens = 0;
        for (size_t i = 0; i < drafting.size(); i++) {
            GenerationJob * job = drafting[i];
            const float * logits = llama_get_logits_ith(ctx, rows[i]);
            llama_token token;
            if (config_.pMin > 0) {
                const auto best = Best(logits, nVocab);
                if (best.second < config_.pMin) continue;  // the draft model is unsure: stop here
                token = best.first;
            } else {
                token = (llama_token) (std::max_element(logits, logits + nVocab) - logits);
            }
            if (llama_vocab_is_eog(vocab, token)) continue;
            job->drafts.push_back(token);
            if ((int32_t) job->drafts.size() >= caps[i]) continue;
            const llama_seq_id seq = job->Request().seq;
            const llama_pos pos = job->pos + (llama_pos) job->drafts.size();
            add(token, pos, seq, true);
            valid_[seq] = pos + 1;
            next.push_back(job);
            nextCaps.push_back(caps[i]);
        }
        if (next.empty() || !flush()) break;
        drafting = next;
        caps = nextCaps;
        rows.resize(drafting.size());
        for (size_t i = 0; i < drafting.size(); i++) rows[i] = (int32_t) i;
    }
}

}  // namespace hermes3
