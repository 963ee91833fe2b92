#include "sampler.h"

#include "log.h"

#include "model.h"

#include <string>
#include <vector>

namespace hermes3 {
namespace {

double Num(const Napi::Object & o, const char * key, double fallback) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : fallback;
}

}  // namespace

Napi::Function SamplerWrap::Define(Napi::Env env) {
    return DefineClass(env, "Sampler", {
        InstanceMethod<&SamplerWrap::Accept>("accept"),
        InstanceMethod<&SamplerWrap::Reset>("reset"),
        InstanceMethod<&SamplerWrap::Dispose>("dispose"),
    });
}

// Chain order follows llama.cpp's common sampler: biases and penalties first, then the
// truncation samplers, then temperature and the final pick.
SamplerWrap::SamplerWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<SamplerWrap>(info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = ModelWrap::Unwrap(info[0].As<Napi::Object>())->Require(env);
    const llama_vocab * vocab = model->vocab;
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    Napi::Object o = info[1].As<Napi::Object>();

    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    llama_sampler * chain = llama_sampler_chain_init(cp);
    // owns the chain from here on, also when an option below throws
    handle_ = std::make_shared<SamplerHandle>(model, chain);

    const uint32_t seed = (uint32_t) Num(o, "seed", LLAMA_DEFAULT_SEED);
    const float temperature = (float) Num(o, "temperature", 0.0);

    Napi::Value grammar = o.Get("grammar");
    if (grammar.IsString()) {
        const std::string g = grammar.As<Napi::String>();
        Napi::Value rootV = o.Get("grammarRoot");
        const std::string root = rootV.IsString() ? rootV.As<Napi::String>().Utf8Value() : "root";
        // a lazy grammar waits for a trigger pattern (e.g. "<tool_call>") before it constrains
        Napi::Value triggers = o.Get("grammarTriggerPatterns");
        llama_sampler * gs = nullptr;
        // llama.cpp's parser logs why it refused the grammar: that goes into the error
        std::vector<std::string> patterns;
        if (triggers.IsArray()) {
            Napi::Array arr = triggers.As<Napi::Array>();
            for (uint32_t i = 0; i < arr.Length(); i++) patterns.push_back(arr.Get(i).As<Napi::String>());
        }
        BeginErrorCapture();
        try {
            if (triggers.IsArray()) {
                std::vector<const char *> ptrs;
                for (auto & p : patterns) ptrs.push_back(p.c_str());
                gs = llama_sampler_init_grammar_lazy_patterns(vocab, g.c_str(), root.c_str(), ptrs.data(), ptrs.size(), nullptr, 0);
            } else {
                gs = llama_sampler_init_grammar(vocab, g.c_str(), root.c_str());
            }
        } catch (const std::exception & e) {
            EndErrorCapture();
            handle_.reset();
            Throw(env, "ERR_INVALID_GRAMMAR", std::string("the GBNF grammar could not be used: ") + e.what());
        }
        std::string why = EndErrorCapture();
        if (!gs) {
            handle_.reset();
            const size_t nl = why.find('\n');
            if (nl != std::string::npos) why.resize(nl);
            Throw(env, "ERR_INVALID_GRAMMAR",
                  "the GBNF grammar could not be parsed" + (why.empty() ? std::string(" (llama.cpp rejected it)") : ": " + why) +
                      "; check it against llama.cpp's GBNF syntax, or pass a JSON schema to schemaToGrammar()");
        }
        handle_->grammar = gs;
    }

    Napi::Value bias = o.Get("logitBias");
    if (bias.IsArray()) {
        Napi::Array arr = bias.As<Napi::Array>();
        std::vector<llama_logit_bias> biases;
        for (uint32_t i = 0; i < arr.Length(); i++) {
            Napi::Array pair = arr.Get(i).As<Napi::Array>();
            biases.push_back({pair.Get(0u).As<Napi::Number>().Int32Value(), pair.Get(1u).As<Napi::Number>().FloatValue()});
        }
        if (!biases.empty()) llama_sampler_chain_add(chain, llama_sampler_init_logit_bias(n_vocab, (int32_t) biases.size(), biases.data()));
    }

    const float repeat = (float) Num(o, "repeatPenalty", 1.0);
    const float freq = (float) Num(o, "frequencyPenalty", 0.0);
    const float presence = (float) Num(o, "presencePenalty", 0.0);
    const int32_t last_n = (int32_t) Num(o, "penaltyLastN", 64);
    if (repeat != 1.0f || freq != 0.0f || presence != 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_penalties(n_vocab, last_n, repeat, freq, presence));
    }

    const float dry = (float) Num(o, "dryMultiplier", 0.0);
    if (dry > 0.0f) {
        std::vector<std::string> breakers = {"\n", ":", "\"", "*"};
        Napi::Value b = o.Get("drySequenceBreakers");
        if (b.IsArray()) {
            breakers.clear();
            Napi::Array arr = b.As<Napi::Array>();
            for (uint32_t i = 0; i < arr.Length(); i++) breakers.push_back(arr.Get(i).As<Napi::String>());
        }
        std::vector<const char *> ptrs;
        for (auto & s : breakers) ptrs.push_back(s.c_str());
        llama_sampler_chain_add(chain, llama_sampler_init_dry(vocab, dry, (float) Num(o, "dryBase", 1.75),
            (int32_t) Num(o, "dryAllowedLength", 2), (int32_t) Num(o, "dryPenaltyLastN", -1), ptrs.data(), ptrs.size()));
    }

    if (temperature <= 0.0f) {
        llama_sampler_chain_add(chain, llama_sampler_init_greedy());
        return;
    }

    const int mirostat = (int) Num(o, "mirostat", 0);
    const float tau = (float) Num(o, "mirostatTau", 5.0);
    const float eta = (float) Num(o, "mirostatEta", 0.1);
    if (mirostat == 1 || mirostat == 2) {
        llama_sampler_chain_add(chain, llama_sampler_init_temp(temperature));
        llama_sampler_chain_add(chain, mirostat == 1 ? llama_sampler_init_mirostat(n_vocab, seed, tau, eta, 100)
                                                      : llama_sampler_init_mirostat_v2(seed, tau, eta));
        return;
    }

    const int32_t top_k = (int32_t) Num(o, "topK", 40);
    const float typical = (float) Num(o, "typicalP", 1.0);
    const float top_p = (float) Num(o, "topP", 0.95);
    const float min_p = (float) Num(o, "minP", 0.05);
    const float xtc_p = (float) Num(o, "xtcProbability", 0.0);
    const float xtc_t = (float) Num(o, "xtcThreshold", 0.1);
    if (top_k > 0) llama_sampler_chain_add(chain, llama_sampler_init_top_k(top_k));
    if (typical < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_typical(typical, 1));
    if (top_p < 1.0f) llama_sampler_chain_add(chain, llama_sampler_init_top_p(top_p, 1));
    if (min_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_min_p(min_p, 1));
    if (xtc_p > 0.0f) llama_sampler_chain_add(chain, llama_sampler_init_xtc(xtc_p, xtc_t, 1, seed));
    llama_sampler_chain_add(chain, llama_sampler_init_temp(temperature));
    llama_sampler_chain_add(chain, llama_sampler_init_dist(seed));
}

const std::shared_ptr<SamplerHandle> & SamplerWrap::Require(Napi::Env env) const {
    if (!handle_) Throw(env, "ERR_DISPOSED", "the sampler has been disposed");
    return handle_;
}

// accept(tokens): feed tokens the model did not sample (the prompt) to the penalty samplers
Napi::Value SamplerWrap::Accept(const Napi::CallbackInfo & info) {
    llama_sampler * chain = Require(info.Env())->chain;
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    for (size_t i = 0; i < tokens.ElementLength(); i++) llama_sampler_accept(chain, tokens[i]);
    return info.Env().Undefined();
}

Napi::Value SamplerWrap::Reset(const Napi::CallbackInfo & info) {
    llama_sampler_reset(Require(info.Env())->chain);
    return info.Env().Undefined();
}

Napi::Value SamplerWrap::Dispose(const Napi::CallbackInfo & info) {
    if (handle_ && handle_->busy.load()) Throw(info.Env(), "ERR_BUSY", "the sampler is in use by a running generation");
    handle_.reset();
    return info.Env().Undefined();
}

}  // namespace hermes3
