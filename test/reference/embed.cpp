// Reference embeddings written directly against the vendored llama.cpp C API, in the order of
// llama.cpp's embedding example: inputs are added to one batch as separate sequences until the
// next would not fit (n_ctx tokens, n_seq_max sequences), the batch is decoded, and each
// sequence's pooled embedding (or, with pooling none, each token's) is read back. The embedding
// tests compare the addon's vectors with this program's on the same model and token ids.
//
// usage: hermes3-embed-reference MODEL POOLING N_CTX N_SEQ_MAX THREADS TOKENS...
//   POOLING: -1 (the model's), 0 none, 1 mean, 2 cls, 3 last; each TOKENS is a comma-separated
//   list of token ids (one input). Prints one line per vector: its floats, space-separated,
//   unnormalized. With HERMES3_REFERENCE_TIMINGS=1 it embeds everything twice and prints
//   `embed_ms N` to stderr: the second pass's time in the decodes and reading the vectors back (not
//   printing them), on a warm context as the benchmark times the others, its anchor.
#include "llama.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

static void quiet(enum ggml_log_level, const char *, void *) {}

static void print_vector(const float * v, int n) {
    for (int i = 0; i < n; i++) std::printf(i ? " %.9g" : "%.9g", v[i]);
    std::printf("\n");
}

int main(int argc, char ** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: %s MODEL POOLING N_CTX N_SEQ_MAX THREADS TOKENS...\n", argv[0]);
        return 2;
    }
    std::vector<std::vector<llama_token>> inputs;
    for (int a = 6; a < argc; a++) {
        std::vector<llama_token> tokens;
        std::stringstream ss(argv[a]);
        std::string item;
        while (std::getline(ss, item, ',')) tokens.push_back((llama_token) std::atoi(item.c_str()));
        inputs.push_back(tokens);
    }

    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mparams = llama_model_default_params();
    mparams.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mparams);
    if (!model) {
        std::fprintf(stderr, "failed to load %s\n", argv[1]);
        return 1;
    }

    llama_context_params cparams = llama_context_default_params();
    cparams.embeddings = true;
    cparams.pooling_type = (enum llama_pooling_type) std::atoi(argv[2]);
    cparams.n_ctx = (uint32_t) std::atoi(argv[3]);
    cparams.n_batch = cparams.n_ctx;
    cparams.n_ubatch = cparams.n_ctx;
    cparams.n_seq_max = (uint32_t) std::atoi(argv[4]);
    cparams.n_threads = std::atoi(argv[5]);
    cparams.n_threads_batch = cparams.n_threads;
    cparams.kv_unified = true;
    cparams.no_perf = true;
    llama_context * ctx = llama_init_from_model(model, cparams);
    if (!ctx) {
        std::fprintf(stderr, "failed to create the context\n");
        return 1;
    }
    const enum llama_pooling_type pooling = llama_pooling_type(ctx);
    const int n_embd = llama_model_n_embd_out(model);
    const int n_ctx = (int) cparams.n_ctx;
    const int n_seq_max = (int) cparams.n_seq_max;

    const bool timings = std::getenv("HERMES3_REFERENCE_TIMINGS") != nullptr;
    double embed_ms = 0;
    std::vector<std::vector<float>> vectors;
    llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    auto decode = [&](int n_seq) {
        const auto t0 = std::chrono::steady_clock::now();
        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_decode(ctx, batch) != 0) {
            std::fprintf(stderr, "llama_decode failed\n");
            std::exit(1);
        }
        const int n_out = pooling == LLAMA_POOLING_TYPE_NONE ? batch.n_tokens : n_seq;
        for (int i = 0; i < n_out; i++) {
            const float * v = pooling == LLAMA_POOLING_TYPE_NONE ? llama_get_embeddings_ith(ctx, i) : llama_get_embeddings_seq(ctx, i);
            vectors.emplace_back(v, v + n_embd);
        }
        embed_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        batch.n_tokens = 0;
    };
    for (int pass = timings ? 0 : 1; pass < 2; pass++) {
        embed_ms = 0;
        vectors.clear();
        int n_seq = 0;
        for (const auto & tokens : inputs) {
            if (batch.n_tokens + (int) tokens.size() > n_ctx || n_seq == n_seq_max) {
                decode(n_seq);
                n_seq = 0;
            }
            for (size_t i = 0; i < tokens.size(); i++) {
                const int k = batch.n_tokens++;
                batch.token[k] = tokens[i];
                batch.pos[k] = (llama_pos) i;
                batch.n_seq_id[k] = 1;
                batch.seq_id[k][0] = n_seq;
                batch.logits[k] = 1;
            }
            n_seq++;
        }
        if (n_seq > 0) decode(n_seq);
    }
    if (timings) std::fprintf(stderr, "embed_ms %.3f\n", embed_ms);
    for (const auto & v : vectors) print_vector(v.data(), n_embd);

    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
