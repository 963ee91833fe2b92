// Draft tokens for speculative decoding: proposed by a small draft model of the same vocabulary
// (decoded on a llama_context of its own, all drafting sequences batched together), or looked up
// in the sequence's own tokens (prompt lookup: the tokens that followed the last earlier
// occurrence of its final n-gram). The scheduler verifies them in one batch of the target model.
#pragma once

#include "llama.h"

#include <cstdint>
#include <vector>

namespace hermes3 {

class GenerationJob;

struct DraftConfig {
    int32_t nDraft = 0;                  // 0: no speculation
    int32_t ngramMin = 0;                // prompt lookup n-gram sizes (0: off)
    int32_t ngramMax = 0;
    float pMin = 0;                      // draft model: stop drafting below this probability
    bool adaptive = true;                // pause drafting while it is slower than plain decoding
    llama_context * draftCtx = nullptr;  // draft model context (nullptr: prompt lookup)
};

class Drafter {
  public:
    Drafter(const DraftConfig & config, int32_t nBatch, int32_t nSeqMax);
    ~Drafter();
    Drafter(const Drafter &) = delete;
    Drafter & operator=(const Drafter &) = delete;

    bool Enabled() const { return config_.nDraft > 0; }
    int32_t NDraft() const { return config_.nDraft; }
    // Fills each job's `drafts` with at most limits[i] tokens to follow its pending token.
    void Draft(const std::vector<GenerationJob *> & jobs, const std::vector<int32_t> & limits);
    // The sequence now holds `end` positions: later draft cache entries are dropped.
    void Truncate(llama_seq_id seq, llama_pos end);
    // Whether this generation step drafts. With `adaptive`, steps with and without drafts are
    // timed (tokens handed out per millisecond), and drafting pauses while it loses, for a
    // number of steps that doubles with each loss, then is tried again.
    bool UseThisStep() const { return Enabled() && pause_ == 0; }
    void Record(bool drafted, int32_t tokens, double ms);

  private:
    void DraftWithModel(const std::vector<GenerationJob *> & jobs, const std::vector<int32_t> & limits);
    bool Decode();

    DraftConfig config_;
    int32_t nBatch_;
    llama_batch batch_;
    std::vector<llama_pos> valid_;  // per sequence: draft cache positions that match it
    // adaptive drafting: tokens per ms with and without drafts (moving averages), the steps
    // measured since drafting resumed, steps left in a pause, and the next pause's length
    double rateDraft_ = 0;
    double ratePlain_ = 0;
    int32_t measured_ = 0;
    int32_t pause_ = 0;
    int32_t nextPause_ = 16;
};

// The tokens that followed the latest earlier occurrence of the last n tokens of `history`
// (n from ngramMax down to ngramMin), at most `limit` of them.
std::vector<llama_token> LookupDraft(const std::vector<llama_token> & history, int32_t ngramMin, int32_t ngramMax, int32_t limit);

}  // namespace hermes3
