// Reference generator written directly against the vendored llama.cpp C API, in the order of
// llama.cpp's own simple example. The parity tests compare the addon's greedy token ids with
// this program's on the same model file and prompt.
//
// usage: hermes3-reference MODEL N_PREDICT THREADS TOKEN_ID...
// prints the generated token ids, one per line, stopping at an end-of-generation token.
// With HERMES3_REFERENCE_TIMINGS=1 it also prints `load_ms N` and `ttft_ms N` to stderr: the
// model load, and the prompt's decode and first sample on a warm context (the benchmark's anchor).
// With HERMES3_REFERENCE_LORA=PATH:SCALE[,PATH:SCALE...] it loads those LoRA adapters and applies
// them to the context (llama_adapter_lora_init, llama_set_adapters_lora) before the prompt.
#include "llama.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

static void quiet(enum ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s MODEL N_PREDICT THREADS TOKEN_ID...\n", argv[0]);
        return 2;
    }
    const char * path = argv[1];
    const int n_predict = std::atoi(argv[2]);
    const int n_threads = std::atoi(argv[3]);
    std::vector<llama_token> prompt;
    for (int i = 4; i < argc; i++) prompt.push_back((llama_token) std::atoi(argv[i]));

    llama_log_set(quiet, nullptr);
    llama_backend_init();

    llama_model_params mparams = llama_model_default_params();
    // the parity tests run both sides on the same device: CPU unless this says otherwise
    const char * ngl = std::getenv("HERMES3_REFERENCE_GPU_LAYERS");
    mparams.n_gpu_layers = ngl ? std::atoi(ngl) : 0;
    const bool timings = std::getenv("HERMES3_REFERENCE_TIMINGS") != nullptr;
    using clock = std::chrono::steady_clock;
    auto ms = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    const auto t_load = clock::now();
    llama_model * model = llama_model_load_from_file(path, mparams);
    if (timings && model) std::fprintf(stderr, "load_ms %.3f\n", ms(t_load, clock::now()));
    if (!model) {
        std::fprintf(stderr, "failed to load %s\n", path);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);

    llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = (uint32_t) (prompt.size() + n_predict + 8);
    cparams.n_batch = cparams.n_ctx;
    cparams.n_threads = n_threads;
    cparams.n_threads_batch = n_threads;
    cparams.no_perf = true;
    llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) {
        std::fprintf(stderr, "failed to create the context\n");
        return 1;
    }

    std::vector<llama_adapter_lora *> adapters;
    std::vector<float> scales;
    if (const char * loras = std::getenv("HERMES3_REFERENCE_LORA")) {
        const std::string list(loras);
        size_t start = 0;
        while (start < list.size()) {
            size_t end = list.find(',', start);
            if (end == std::string::npos) end = list.size();
            const std::string item = list.substr(start, end - start);
            const size_t colon = item.rfind(':');
            const std::string file = colon == std::string::npos ? item : item.substr(0, colon);
            const float scale = colon == std::string::npos ? 1.0f : std::strtof(item.c_str() + colon + 1, nullptr);
            llama_adapter_lora * adapter = llama_adapter_lora_init(model, file.c_str());
            if (!adapter) {
                std::fprintf(stderr, "failed to load the LoRA adapter %s\n", file.c_str());
                return 1;
            }
            adapters.push_back(adapter);
            scales.push_back(scale);
            start = end + 1;
        }
        llama_set_adapters_lora(ctx, adapters.data(), adapters.size(), scales.data());
    }

    llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    if (timings) {
        // warm the context with the same prompt, then time it again from an empty cache
        llama_batch warm = llama_batch_get_one(prompt.data(), (int32_t) prompt.size());
        if (llama_decode(ctx, warm) != 0) return 1;
        llama_memory_clear(llama_get_memory(ctx), true);
        const auto t0 = clock::now();
        llama_batch first = llama_batch_get_one(prompt.data(), (int32_t) prompt.size());
        if (llama_decode(ctx, first) != 0) return 1;
        llama_sampler_sample(smpl, ctx, -1);
        std::fprintf(stderr, "ttft_ms %.3f\n", ms(t0, clock::now()));
        llama_memory_clear(llama_get_memory(ctx), true);
        llama_sampler_reset(smpl);
    }

    llama_batch batch = llama_batch_get_one(prompt.data(), (int32_t) prompt.size());
    llama_token next = 0;
    for (int n = 0; n < n_predict; n++) {
        if (llama_decode(ctx, batch) != 0) {
            std::fprintf(stderr, "llama_decode failed\n");
            return 1;
        }
        next = llama_sampler_sample(smpl, ctx, -1);
        std::printf("%d\n", next);
        if (llama_vocab_is_eog(vocab, next)) break;
        batch = llama_batch_get_one(&next, 1);
    }

    llama_sampler_free(smpl);
    llama_free(ctx);
    for (llama_adapter_lora * adapter : adapters) llama_adapter_lora_free(adapter);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
