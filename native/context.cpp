#include "context.h"

#include "generation.h"
#include "log.h"
#include "lora.h"
#include "model.h"
#include "worker.h"

#include "ggml-backend.h"

#include <algorithm>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace hermes3 {
namespace {

// Creates and attaches persistent CPU thread pools. The functions come from the CPU backend's
// registry, so this works whether ggml-cpu is linked in or loaded at run time.
void AttachThreadPools(ContextHandle & h, int32_t threads, int32_t threadsBatch, ggml_sched_priority prio) {
    ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!cpu) return;
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(cpu);
    using NewFn = ggml_threadpool_t (*)(ggml_threadpool_params *);
    using FreeFn = void (*)(ggml_threadpool_t);
    auto new_fn = (NewFn) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_new");
    auto free_fn = (FreeFn) ggml_backend_reg_get_proc_address(reg, "ggml_threadpool_free");
    if (!new_fn || !free_fn) return;
    // created paused: the workers sleep until the first graph instead of polling from the start.
    // 'low' pools are created on a lowered thread (the context's creation runs on one), so the
    // workers and the scheduler's thread inherit the class; ggml leaves 'normal' threads alone
    ggml_threadpool_params p = ggml_threadpool_params_default(threads);
    p.prio = prio;
    p.paused = true;
    h.pool.pool = new_fn(&p);
    h.pool.free_fn = free_fn;
    if (threadsBatch != threads) {
        ggml_threadpool_params pb = ggml_threadpool_params_default(threadsBatch);
        pb.prio = prio;
        pb.paused = true;
        h.poolBatch.pool = new_fn(&pb);
        h.poolBatch.free_fn = free_fn;
    }
    if (!h.pool.pool) return;
    ggml_threadpool_t batch = h.poolBatch.pool ? h.poolBatch.pool : h.pool.pool;
    llama_attach_threadpool(h.ctx, h.pool.pool, batch);
    // the draft context runs on the same thread as the target, never at the same time
    if (h.draftCtx) llama_attach_threadpool(h.draftCtx, h.pool.pool, batch);
}

using Bytes = std::vector<uint8_t>;

// One sequence's KV cache state, in llama.cpp's format; on the scheduler's thread.
Bytes SequenceState(llama_context * ctx, llama_seq_id seq) {
    Bytes bytes(llama_state_seq_get_size(ctx, seq));
    const size_t n = llama_state_seq_get_data(ctx, bytes.data(), bytes.size(), seq);
    if (n == 0 && !bytes.empty()) throw NativeError("ERR_STATE", "llama.cpp could not copy the sequence state");
    bytes.resize(n);
    return bytes;
}

Napi::Value ToBuffer(Napi::Env env, Bytes & bytes) { return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()); }

bool AbortCallback(void * data) {
    return static_cast<Scheduler *>(data)->Aborting();
}

}  // namespace

Napi::Function ContextWrap::Define(Napi::Env env) {
    return DefineClass(env, "Context", {
        InstanceMethod<&ContextWrap::Generate>("generate"),
        InstanceMethod<&ContextWrap::RemoveTokens>("removeTokens"),
        InstanceMethod<&ContextWrap::Stats>("stats"),
        InstanceMethod<&ContextWrap::SaveSequence>("saveSequence"),
        InstanceMethod<&ContextWrap::RestoreSequence>("restoreSequence"),
        InstanceMethod<&ContextWrap::SetLoras>("setLoras"),
        InstanceMethod<&ContextWrap::SaveSequenceRange>("saveSequenceRange"),
        InstanceMethod<&ContextWrap::AppendSequence>("appendSequence"),
        InstanceMethod<&ContextWrap::Dispose>("dispose"),
    });
}

// new Context(External<shared_ptr<ContextHandle>>): takes over the handle created by Create()
ContextWrap::ContextWrap(const Napi::CallbackInfo & info)
    : Napi::ObjectWrap<ContextWrap>(info), handle_(TakeHandle<ContextHandle>(info, "Context objects are created by createContext()")) {}

const std::shared_ptr<ContextHandle> & ContextWrap::Require(Napi::Env env) const {
    if (!handle_) Throw(env, "ERR_DISPOSED", "the context has been disposed");
    return handle_;
}

Napi::Value ContextWrap::Create(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = ModelWrap::Unwrap(info[0].As<Napi::Object>())->Require(env);
    Napi::Object o = info[1].As<Napi::Object>();

    llama_context_params p = llama_context_default_params();
    p.n_ctx = o.Get("nCtx").As<Napi::Number>().Uint32Value();
    p.n_batch = o.Get("nBatch").As<Napi::Number>().Uint32Value();
    p.n_ubatch = o.Get("nUbatch").As<Napi::Number>().Uint32Value();
    p.n_seq_max = o.Get("nSeqMax").As<Napi::Number>().Uint32Value();
    p.n_threads = o.Get("threads").As<Napi::Number>().Int32Value();
    p.n_threads_batch = o.Get("threadsBatch").As<Napi::Number>().Int32Value();
    p.flash_attn_type = (llama_flash_attn_type) o.Get("flashAttention").As<Napi::Number>().Int32Value();
    p.type_k = (ggml_type) o.Get("typeK").As<Napi::Number>().Int32Value();
    p.type_v = (ggml_type) o.Get("typeV").As<Napi::Number>().Int32Value();
    p.kv_unified = o.Get("kvUnified").ToBoolean();
    p.no_perf = true;
    auto prio = (ggml_sched_priority) o.Get("threadPriority").As<Napi::Number>().Int32Value();

    // speculative decoding: { nDraft, ngramMin, ngramMax, pMin, adaptive, model? }
    DraftConfig draft;
    std::shared_ptr<ModelHandle> draftModel;
    Napi::Value d = o.Get("draft");
    if (d.IsObject()) {
        Napi::Object dobj = d.As<Napi::Object>();
        draft.nDraft = dobj.Get("nDraft").As<Napi::Number>().Int32Value();
        draft.ngramMin = dobj.Get("ngramMin").As<Napi::Number>().Int32Value();
        draft.ngramMax = dobj.Get("ngramMax").As<Napi::Number>().Int32Value();
        draft.pMin = dobj.Get("pMin").As<Napi::Number>().FloatValue();
        draft.adaptive = dobj.Get("adaptive").ToBoolean();
        Napi::Value dm = dobj.Get("model");
        if (dm.IsObject()) draftModel = ModelWrap::Unwrap(dm.As<Napi::Object>())->Require(env);
    }

    // LoRA adapters the context applies from the start
    auto loras = std::make_shared<std::vector<LoraUse>>(ReadLoraList(env, o.Get("lora"), model));

    using Result = std::shared_ptr<ContextHandle>;
    return PromiseWorker<Result>::Run(
        env, "hermes3:createContext",
        [model, p, draft, draftModel, loras, prio]() -> Result {
            Result handle;
            // the heavy part on a lowered thread (at 'low'); the scheduler's threads are started
            // from this worker thread, so that the scheduler thread does not inherit the lowered
            // class and the event loop does not pay for starting threads
            const auto create = [&]() {
                std::string errors;
                llama_context * ctx = model->NewContext(p, errors);
                if (!ctx) throw NativeError("ERR_CONTEXT_CREATE", errors.empty() ? "llama.cpp could not create the context" : errors);
                handle = std::make_shared<ContextHandle>(model, ctx);
                handle->priority = PriorityFromGgml(prio);
                const bool withLoras = ApplyLoras(*handle, *loras);
                DraftConfig config = draft;
                if (draftModel) {
                    handle->draftCtx = draftModel->NewContext(p, errors);
                    if (!handle->draftCtx) throw NativeError("ERR_CONTEXT_CREATE", "cannot create the draft model's context: " + (errors.empty() ? std::string("llama.cpp refused it") : errors));
                    handle->draftModel = draftModel;
                    config.draftCtx = handle->draftCtx;
                }
                AttachThreadPools(*handle, p.n_threads, p.n_threads_batch, prio);
                handle->scheduler = std::make_unique<Scheduler>(ctx, config);
                if (withLoras) handle->scheduler->ReserveUnder(&model->adapters);
                llama_set_abort_callback(ctx, AbortCallback, handle->scheduler.get());
            };
            RunAt(PriorityFromGgml(prio), create);
            try {
                handle->scheduler->Start(handle->priority);
            } catch (const std::system_error & e) {
                throw NativeError("ERR_NATIVE", std::string("cannot start the context's threads: ") + e.what());
            }
            return handle;
        },
        [](Napi::Env env, Result & handle) { return NewWrapped(env, GetAddonData(env).contextConstructor, handle); },
        {}, nullptr, Priority::Normal);
}

Napi::Value ContextWrap::Generate(const Napi::CallbackInfo & info) {
    return GenerationJob::Start(info, Require(info.Env()));
}

// removeTokens(seq, from, to) -> Promise<boolean>: drop KV positions [from, to) of a sequence
// (to < 0: to the end), between two decode steps
Napi::Value ContextWrap::RemoveTokens(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    if (handle->scheduler->Busy(seq)) Throw(env, "ERR_BUSY", "the sequence is generating");
    const int32_t from = info[1].As<Napi::Number>().Int32Value();
    const int32_t to = info[2].As<Napi::Number>().Int32Value();
    return PromiseWorker<bool>::Run(
        env, "hermes3:removeTokens",
        [handle, seq, from, to]() {
            bool ok = false;
            llama_context * ctx = handle->ctx;
            handle->scheduler->Call([&]() {
                ok = llama_memory_seq_rm(llama_get_memory(ctx), seq, from, to);
                handle->scheduler->Truncated(seq, std::max(0, from));
            });
            return ok;
        },
        [](Napi::Env env, bool & ok) -> Napi::Value { return Napi::Boolean::New(env, ok); });
}

Napi::Value ContextWrap::Stats(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const auto & handle = Require(env);
    llama_context * ctx = handle->ctx;
    Napi::Object out = Napi::Object::New(env);
    out.Set("decodeSteps", (double) handle->scheduler->steps.load());
    out.Set("decodedTokens", (double) handle->scheduler->tokens.load());
    out.Set("widestStep", handle->scheduler->widest.load());
    out.Set("nCtx", llama_n_ctx(ctx));
    out.Set("nCtxSeq", llama_n_ctx_seq(ctx));
    out.Set("nBatch", llama_n_batch(ctx));
    out.Set("nUbatch", llama_n_ubatch(ctx));
    out.Set("nSeqMax", llama_n_seq_max(ctx));
    out.Set("threads", llama_n_threads(ctx));
    out.Set("threadsBatch", llama_n_threads_batch(ctx));
    return out;
}

// saveSequence(seq) -> Promise<Buffer>: the sequence's KV cache state (llama.cpp's format)
Napi::Value ContextWrap::SaveSequence(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    if (handle->scheduler->Busy(seq)) Throw(env, "ERR_BUSY", "the sequence is generating");
    return PromiseWorker<Bytes>::Run(
        env, "hermes3:saveSequence",
        [handle, seq]() {
            Bytes bytes;
            handle->scheduler->Call([&]() { bytes = SequenceState(handle->ctx, seq); });
            return bytes;
        },
        ToBuffer);
}

// restoreSequence(seq, bytes) -> Promise<void>: replaces the sequence's KV cache with a saved state
Napi::Value ContextWrap::RestoreSequence(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    if (handle->scheduler->Busy(seq)) Throw(env, "ERR_BUSY", "the sequence is generating");
    Napi::Uint8Array input = info[1].As<Napi::Uint8Array>();
    auto bytes = std::make_shared<std::vector<uint8_t>>(input.Data(), input.Data() + input.ByteLength());
    // resolves with the number of positions the sequence holds afterwards
    return PromiseWorker<int32_t>::Run(
        env, "hermes3:restoreSequence",
        [handle, seq, bytes]() {
            int32_t held = 0;
            llama_context * ctx = handle->ctx;
            handle->scheduler->Call([&]() {
                llama_memory_seq_rm(llama_get_memory(ctx), seq, -1, -1);
                handle->scheduler->Truncated(seq, 0);
                BeginErrorCapture();
                const size_t n = llama_state_seq_set_data(ctx, bytes->data(), bytes->size(), seq);
                std::string errors = EndErrorCapture();
                if (n == 0) throw NativeError("ERR_STATE", errors.empty() ? "the saved state does not fit this context (another model, a smaller nCtx, or a corrupt file)" : errors);
                held = llama_memory_seq_pos_max(llama_get_memory(ctx), seq) + 1;
            });
            return held;
        },
        [](Napi::Env env, int32_t & held) -> Napi::Value { return Napi::Number::New(env, held); });
}

// setLoras([{ adapter, scale }]) -> Promise<boolean>: the adapters the context applies from its
// next decode, set between two decode steps. While a sequence generates it refuses (ERR_BUSY):
// a generation runs with one set of adapters from start to end. When the adapters in effect
// change, every sequence's KV cache is cleared (it was computed with the old ones); resolves
// with whether they changed.
Napi::Value ContextWrap::SetLoras(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    if (handle->scheduler->AnyBusy()) {
        Throw(env, "ERR_BUSY", "a sequence of this context is generating: its adapters can change once it is done (abort it, or wait for it)");
    }
    auto next = std::make_shared<std::vector<LoraUse>>(ReadLoraList(env, info[0], handle->model));
    return PromiseWorker<bool>::Run(
        env, "hermes3:setLoras",
        [handle, next]() {
            bool changed = false;
            handle->scheduler->Call([&]() {
                if (handle->scheduler->AnyBusy()) throw NativeError("ERR_BUSY", "a sequence of this context started generating: its adapters can change once it is done");
                changed = ApplyLoras(*handle, *next);
                if (!changed) return;
                llama_memory_clear(llama_get_memory(handle->ctx), true);
                handle->scheduler->ReserveUnder(&handle->model->adapters);
            });
            next->clear();  // the adapters no longer applied: freed here, outside the adapter lock
            return changed;
        },
        [](Napi::Env env, bool & changed) -> Napi::Value { return Napi::Boolean::New(env, changed); });
}

// A range of a sequence's cells is saved and restored through a scratch sequence. That is only
// possible when both sequences live in one stream of the KV cache: llama.cpp copies between
// streams only whole buffers (and asserts otherwise).
static void CheckScratch(Napi::Env env, const ContextHandle & h, int32_t seq, int32_t scratch) {
    if (scratch == seq || scratch < 0 || (uint32_t) scratch >= llama_n_seq_max(h.ctx)) {
        Throw(env, "ERR_STATE", "the scratch sequence must be another sequence of this context");
    }
    if (llama_n_ctx_seq(h.ctx) != llama_n_ctx(h.ctx)) {
        Throw(env, "ERR_STATE", "ranges of a sequence are saved and restored only in a context with a unified KV cache (kvUnified: true)");
    }
    if (h.scheduler->Busy(seq) || h.scheduler->Busy(scratch)) Throw(env, "ERR_BUSY", "the sequence is generating");
}

// saveSequenceRange(seq, scratch, from, to) -> Promise<Buffer>: the state of the sequence's cells
// at positions [from, to) (to < 0: to the end), in llama.cpp's sequence state format. The cells
// are shared with the empty scratch sequence (no copy in a unified cache) and saved from there.
Napi::Value ContextWrap::SaveSequenceRange(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    const int32_t scratch = info[1].As<Napi::Number>().Int32Value();
    const int32_t from = info[2].As<Napi::Number>().Int32Value();
    const int32_t to = info[3].As<Napi::Number>().Int32Value();
    CheckScratch(env, *handle, seq, scratch);
    return PromiseWorker<Bytes>::Run(
        env, "hermes3:saveSequenceRange",
        [handle, seq, scratch, from, to]() {
            Bytes bytes;
            handle->scheduler->Call([&]() {
                llama_memory_t mem = llama_get_memory(handle->ctx);
                llama_memory_seq_rm(mem, scratch, -1, -1);
                llama_memory_seq_cp(mem, seq, scratch, from, to);
                try {
                    bytes = SequenceState(handle->ctx, scratch);
                } catch (...) {
                    llama_memory_seq_rm(mem, scratch, -1, -1);
                    throw;
                }
                llama_memory_seq_rm(mem, scratch, -1, -1);
            });
            return bytes;
        },
        ToBuffer);
}

// appendSequence(seq, scratch, keep, bytes) -> Promise<number>: drops the sequence's positions from
// `keep` on, then adds the cells of a state saved by saveSequenceRange at their saved positions,
// which must start at `keep`. llama.cpp's restore empties its target sequence first, so the cells
// go to the scratch sequence and are shared from there. Resolves with the positions held.
Napi::Value ContextWrap::AppendSequence(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ContextHandle> handle = Require(env);
    const int32_t seq = info[0].As<Napi::Number>().Int32Value();
    const int32_t scratch = info[1].As<Napi::Number>().Int32Value();
    const int32_t keep = info[2].As<Napi::Number>().Int32Value();
    CheckScratch(env, *handle, seq, scratch);
    Napi::Uint8Array input = info[3].As<Napi::Uint8Array>();
    auto bytes = std::make_shared<std::vector<uint8_t>>(input.Data(), input.Data() + input.ByteLength());
    return PromiseWorker<int32_t>::Run(
        env, "hermes3:appendSequence",
        [handle, seq, scratch, keep, bytes]() {
            int32_t held = 0;
            llama_context * ctx = handle->ctx;
            handle->scheduler->Call([&]() {
                llama_memory_t mem = llama_get_memory(ctx);
                llama_memory_seq_rm(mem, seq, keep, -1);
                handle->scheduler->Truncated(seq, keep);
                llama_memory_seq_rm(mem, scratch, -1, -1);
                const llama_pos end = llama_memory_seq_pos_max(mem, seq) + 1;
                BeginErrorCapture();
                const size_t n = llama_state_seq_set_data(ctx, bytes->data(), bytes->size(), scratch);
                std::string errors = EndErrorCapture();
                if (n == 0) {
                    llama_memory_seq_rm(mem, scratch, -1, -1);
                    throw NativeError("ERR_STATE", errors.empty() ? "the saved range does not fit this context (another model, a smaller nCtx, or a corrupt file)" : errors);
                }
                const llama_pos first = llama_memory_seq_pos_min(mem, scratch);
                if (first != -1 && first != end) {
                    llama_memory_seq_rm(mem, scratch, -1, -1);
                    throw NativeError("ERR_STATE", "the saved range starts at position " + std::to_string(first) + " but the sequence holds " + std::to_string(end) + " positions");
                }
                llama_memory_seq_cp(mem, scratch, seq, -1, -1);
                llama_memory_seq_rm(mem, scratch, -1, -1);
                held = llama_memory_seq_pos_max(mem, seq) + 1;
            });
            return held;
        },
        [](Napi::Env env, int32_t & held) -> Napi::Value { return Napi::Number::New(env, held); });
}

Napi::Value ContextWrap::Dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (handle_ && handle_->scheduler->AnyBusy()) {
        Throw(env, "ERR_BUSY", "a generation is running on this context; abort it and wait for it first");
    }
    // the KV cache is freed and the scheduler joined off the main thread
    return ReleaseOffThread(env, "hermes3:disposeContext", std::move(handle_));
}

}  // namespace hermes3
