// Native state shared between the JS wrappers and the threads that use it. Each handle frees its
// llama.cpp object when the last owner lets go, so finalizers may run in any order (they do at
// environment teardown) without a context outliving its model or a generation its context.
#pragma once

#include "priority.h"

#include "llama.h"
#include "ggml.h"
#include "rpc.h"
#include "scheduler.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace hermes3 {

struct ModelHandle {
    explicit ModelHandle(llama_model * m) : model(m), vocab(llama_model_get_vocab(m)) {}
    ~ModelHandle() {
        RpcQuietScope quiet;  // a remote server that went away must not make freeing throw
        llama_model_free(model);
    }
    ModelHandle(const ModelHandle &) = delete;
    ModelHandle & operator=(const ModelHandle &) = delete;

    llama_model * const model;
    const llama_vocab * const vocab;
    // the priority of the threads that load, free and create contexts over it (loadModel's threadPriority)
    Priority priority = Priority::Normal;
    // llama.cpp keeps a list of the model's LoRA adapters that adapter loading and freeing change
    // and that a context reads when it sizes its graph (creation, and the first decode after its
    // adapters change): all of those hold this lock
    std::mutex adapters;

    // llama_init_from_model under the adapter lock (a new context sizes its graph with the
    // adapters in mind); null with llama.cpp's error lines in `errors` when it refuses
    llama_context * NewContext(const llama_context_params & params, std::string & errors);
};

// A LoRA adapter loaded for a model. It holds the model, so the adapter is freed before it.
struct LoraHandle {
    LoraHandle(std::shared_ptr<ModelHandle> m, llama_adapter_lora * a) : model(std::move(m)), adapter(a) {}
    ~LoraHandle() {
        std::lock_guard<std::mutex> lock(model->adapters);
        llama_adapter_lora_free(adapter);
    }
    LoraHandle(const LoraHandle &) = delete;
    LoraHandle & operator=(const LoraHandle &) = delete;

    const std::shared_ptr<ModelHandle> model;
    llama_adapter_lora * const adapter;
};

// An adapter applied to a context, with its scale.
struct LoraUse {
    std::shared_ptr<LoraHandle> adapter;
    float scale;
};

// ggml's CPU thread pool, kept for the life of a context: without one, ggml starts and joins
// its worker threads for every graph, i.e. for every generated token.
struct ThreadPool {
    ggml_threadpool_t pool = nullptr;
    void (*free_fn)(ggml_threadpool_t) = nullptr;
    ThreadPool() = default;
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool & operator=(const ThreadPool &) = delete;
    ~ThreadPool() {
        if (pool && free_fn) free_fn(pool);
    }
};

struct ContextHandle {
    ContextHandle(std::shared_ptr<ModelHandle> m, llama_context * c) : model(std::move(m)), ctx(c) {}
    ~ContextHandle() {
        scheduler.reset();  // joins the thread that decodes on the context
        RpcQuietScope quiet;  // a remote server that went away must not make freeing throw
        if (draftCtx) llama_free(draftCtx);
        llama_free(ctx);
        // the pools outlive the context that used them (members are destroyed after this body)
    }
    ContextHandle(const ContextHandle &) = delete;
    ContextHandle & operator=(const ContextHandle &) = delete;

    const std::shared_ptr<ModelHandle> model;  // declared first: freed after the context
    std::shared_ptr<ModelHandle> draftModel;   // speculative decoding's draft model, if any
    std::vector<LoraUse> loras;                // the adapters the context applies: freed after it
    ThreadPool pool;                           // for generation
    ThreadPool poolBatch;                      // for prompts, when its thread count differs
    llama_context * const ctx;
    llama_context * draftCtx = nullptr;        // on draftModel, with the same sequences
    Priority priority = Priority::Normal;      // of its compute threads, and of its creation and freeing
    // owns every use of ctx once created: generations, and the sequence operations it runs
    std::unique_ptr<Scheduler> scheduler;
};

// The priority at which a handle is freed: its own, or its model's.
inline Priority PriorityOf(const ModelHandle & h) { return h.priority; }
inline Priority PriorityOf(const ContextHandle & h) { return h.priority; }
inline Priority PriorityOf(const LoraHandle & h) { return h.model->priority; }

struct SamplerHandle {
    SamplerHandle(std::shared_ptr<ModelHandle> m, llama_sampler * s) : model(std::move(m)), chain(s) {}
    ~SamplerHandle() {
        llama_sampler_free(chain);
        if (grammar) llama_sampler_free(grammar);
    }
    SamplerHandle(const SamplerHandle &) = delete;
    SamplerHandle & operator=(const SamplerHandle &) = delete;

    const std::shared_ptr<ModelHandle> model;  // grammar and DRY samplers keep vocabulary pointers
    llama_sampler * const chain;
    // A grammar is kept out of the chain: a token is sampled first and checked against it,
    // and only a rejected token makes the grammar filter the whole vocabulary.
    llama_sampler * grammar = nullptr;
    // set while a generation samples with this chain
    std::atomic<bool> busy{false};
};

}  // namespace hermes3
