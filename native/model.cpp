#include "model.h"
#include "rpc.h"

#include "log.h"
#include "mapped_release.h"
#include "worker.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace hermes3 {

llama_context * ModelHandle::NewContext(const llama_context_params & params, std::string & errors) {
    std::lock_guard<std::mutex> lock(adapters);
    BeginErrorCapture();
    llama_context * ctx = llama_init_from_model(model, params);
    errors = EndErrorCapture();
    return ctx;
}
namespace {

// Loading reports its progress through `onProgress`. The loader (a lowered thread at 'low')
// stores the latest value and posts the item to the loop queue, which takes no lock the event
// loop waits on; the event loop passes the value on. The last value is passed on before the
// promise settles.
class LoadProgress final : public LoopItem {
  public:
    LoadProgress(Napi::Env env, Napi::Function fn)
        : fn_(Napi::Persistent(fn)), async_(env, "hermes3:progress"), queue_(GetAddonData(env).loopQueue) {
        queue_->Register(this);
    }

    // loader thread
    void Report(float progress) {
        const int percent = (int) std::floor(progress * 100.0f);
        if (percent == reported_) return;
        reported_ = percent;
        latest_.store(progress);
        if (!queued_.exchange(true)) queue_->Post(this);
    }

    // main thread, once the loader is done: passes the last value on; frees the item now, or
    // when the queue has let go of it
    void Retire(Napi::Env env) {
        Deliver(env);
        retired_ = true;
        if (!queued_.load()) Free();
    }

    void OnLoop(Napi::Env env) override {
        queued_.store(false);
        if (retired_) Free();
        else Deliver(env);
    }
    void Stop() override {}  // the loader has ended once the load's worker has stopped
    void Teardown() override { delete this; }

  private:
    void Deliver(Napi::Env env) {
        const float progress = latest_.load();
        const int percent = (int) std::floor(progress * 100.0f);
        if (progress < 0.0f || percent == delivered_) return;
        delivered_ = percent;
        try {
            Napi::HandleScope scope(env);
            CallBack(env, fn_, async_, {Napi::Number::New(env, progress)});
        } catch (const Napi::Error &) {
            // a throwing progress callback, or an environment shutting down
        }
    }
    void Free() {
        queue_->Unregister(this);
        delete this;
    }

    Napi::FunctionReference fn_;
    Napi::AsyncContext async_;
    LoopQueue * queue_;
    std::atomic<float> latest_{-1.0f};
    std::atomic<bool> queued_{false};
    int reported_ = -1;   // loader thread
    int delivered_ = -1;  // main thread
    bool retired_ = false;
};

// a loaded model not yet owned by a Model object (freed with the worker when it never is)
struct ModelFree {
    void operator()(llama_model * model) const { llama_model_free(model); }
};
using OwnedModel = std::unique_ptr<llama_model, ModelFree>;

struct LoadState {
    ControlBlock control;
    LoadProgress * progress = nullptr;  // registered in the loop queue, which frees it at teardown
};

bool OnProgress(float progress, void * user) {
    auto * state = static_cast<LoadState *>(user);
    if (state->control.aborted()) return false;
    if (state->progress) state->progress->Report(progress);
    return true;
}

std::string MetaString(const llama_model * model, const char * key) {
    std::vector<char> buf(256);
    int32_t n = llama_model_meta_val_str(model, key, buf.data(), buf.size());
    if (n < 0) return "";
    if ((size_t) n >= buf.size()) {
        buf.resize(n + 1);
        llama_model_meta_val_str(model, key, buf.data(), buf.size());
    }
    return std::string(buf.data(), n);
}

std::vector<llama_token> ReadTokens(const Napi::Value & value) {
    std::vector<llama_token> tokens;
    if (value.IsTypedArray()) {
        auto arr = value.As<Napi::Int32Array>();
        tokens.assign(arr.Data(), arr.Data() + arr.ElementLength());
    } else {
        auto arr = value.As<Napi::Array>();
        tokens.reserve(arr.Length());
        for (uint32_t i = 0; i < arr.Length(); i++) tokens.push_back(arr.Get(i).As<Napi::Number>().Int32Value());
    }
    return tokens;
}

}  // namespace

Napi::Function ModelWrap::Define(Napi::Env env) {
    return DefineClass(env, "Model", {
        InstanceMethod<&ModelWrap::Info>("info"),
        InstanceMethod<&ModelWrap::Tokenize>("tokenize"),
        InstanceMethod<&ModelWrap::TokenPieces>("tokenPieces"),
        InstanceMethod<&ModelWrap::Dispose>("dispose"),
    });
}

ModelWrap::ModelWrap(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ModelWrap>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) {
        Throw(info.Env(), "ERR_INVALID_USE", "Model objects are created by loadModel()");
    }
    handle_ = std::make_shared<ModelHandle>(info[0].As<Napi::External<llama_model>>().Data());
    if (info.Length() > 1 && info[1].IsNumber()) handle_->priority = PriorityFromGgml(info[1].As<Napi::Number>().Int32Value());
}

const std::shared_ptr<ModelHandle> & ModelWrap::Require(Napi::Env env) const {
    if (!handle_) Throw(env, "ERR_DISPOSED", "the model has been disposed");
    return handle_;
}

Napi::Value ModelWrap::Load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const std::string path = info[0].As<Napi::String>();
    Napi::Object opts = info[1].As<Napi::Object>();
    auto progress = std::make_shared<LoadState>();
    progress->control = ControlBlock(info[3].As<Napi::Int32Array>());

    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = opts.Get("nGpuLayers").As<Napi::Number>().Int32Value();
    const bool mmap = opts.Get("useMmap").ToBoolean();
    // ggml_sched_priority: -1 low (the load runs on a lowered thread), 0 normal
    const int32_t prio = opts.Has("threadPriority") ? opts.Get("threadPriority").As<Napi::Number>().Int32Value() : 0;
    const bool mlock = opts.Get("useMlock").ToBoolean();
    params.load_mode = mmap ? (mlock ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_MMAP)
                            : (mlock ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_NONE);
    params.vocab_only = opts.Get("vocabOnly").ToBoolean();
    params.check_tensors = opts.Get("checkTensors").ToBoolean();
    params.progress_callback = OnProgress;
    params.progress_callback_user_data = progress.get();
    // the share of the offloaded layers for each GPU (llama.cpp reads llama_max_devices() floats)
    auto split = std::make_shared<std::vector<float>>(llama_max_devices(), 0.0f);
    Napi::Value splitValue = opts.Get("tensorSplit");
    if (splitValue.IsArray()) {
        Napi::Array shares = splitValue.As<Napi::Array>();
        for (uint32_t i = 0; i < shares.Length() && i < split->size(); i++) {
            (*split)[i] = shares.Get(i).As<Napi::Number>().FloatValue();
        }
        params.tensor_split = split->data();
    }

    // remote rpc-servers first (as llama.cpp orders them, to keep network transfers few), then the
    // local GPUs llama.cpp would pick itself
    auto devices = std::make_shared<std::vector<ggml_backend_dev_t>>();
    Napi::Value rpcValue = opts.Get("rpcServers");
    if (rpcValue.IsArray() && rpcValue.As<Napi::Array>().Length() > 0) {
        Napi::Array servers = rpcValue.As<Napi::Array>();
        try {
            for (uint32_t i = 0; i < servers.Length(); i++) {
                for (ggml_backend_dev_t dev : RpcDevices(servers.Get(i).As<Napi::String>().Utf8Value())) devices->push_back(dev);
            }
        } catch (const NativeError & e) {
            Throw(env, e.code, e.what());
        }
        std::vector<ggml_backend_dev_t> gpus, igpus;
        for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
            ggml_backend_dev_t dev = ggml_backend_dev_get(i);
            if (std::string(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev))) == "RPC") continue;
            if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU) gpus.push_back(dev);
            else if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_IGPU) igpus.push_back(dev);
        }
        devices->insert(devices->end(), gpus.begin(), gpus.end());
        if (gpus.empty()) devices->insert(devices->end(), igpus.begin(), igpus.end());
        devices->push_back(nullptr);
        params.devices = devices->data();
    }

    // weights copied out of the mapping (repacked for the CPU) release their mapped pages as they
    // are copied; with mlock the caller asked for the file to stay resident, so it does
    InstallMappedRelease();
    const bool releaseMapped = mmap && !mlock;

    // last, as nothing may throw once it is registered but Run (which then retires it)
    if (info[2].IsFunction()) progress->progress = new LoadProgress(env, info[2].As<Napi::Function>());
    try {
        return PromiseWorker<OwnedModel>::Run(
            env, "hermes3:loadModel",
            [path, params, progress, split, devices, releaseMapped]() {
                BeginErrorCapture();
                llama_model * model;
                {
                    ScopedMappedRelease release(releaseMapped);
                    try {
                        model = llama_model_load_from_file(path.c_str(), params);
                    } catch (const std::exception & e) {
                        EndErrorCapture();
                        throw NativeError("ERR_MODEL_LOAD", std::string("llama.cpp failed while loading the model: ") + e.what());
                    }
                }
                std::string errors = EndErrorCapture();
                if (!model) {
                    if (progress->control.aborted()) throw NativeError("ABORT_ERR", "model loading was aborted");
                    throw NativeError("ERR_MODEL_LOAD", errors.empty() ? "llama.cpp could not load the model" : errors);
                }
                return OwnedModel(model);
            },
            [prio](Napi::Env env, OwnedModel & model) -> Napi::Value {
                Napi::Value wrapped = GetAddonData(env).modelConstructor.New({Napi::External<llama_model>::New(env, model.get()), Napi::Number::New(env, prio)});
                model.release();  // the Model object owns it now
                return wrapped;
            },
            {},
            [progress](Napi::Env env) {
                if (progress->progress) progress->progress->Retire(env);
                progress->progress = nullptr;
                progress->control.release();
            },
            PriorityFromGgml(prio));
    } catch (...) {
        if (progress->progress) progress->progress->Retire(env);
        throw;
    }
}

Napi::Value ModelWrap::Info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const llama_model * m = Require(env)->model;
    const llama_vocab * vocab = handle_->vocab;
    Napi::Object out = Napi::Object::New(env);
    out.Set("architecture", MetaString(m, "general.architecture"));
    out.Set("name", MetaString(m, "general.name"));
    char desc[256];
    llama_model_desc(m, desc, sizeof(desc));
    out.Set("description", std::string(desc));
    out.Set("nParams", Napi::Number::New(env, (double) llama_model_n_params(m)));
    out.Set("sizeBytes", Napi::Number::New(env, (double) llama_model_size(m)));
    out.Set("nCtxTrain", llama_model_n_ctx_train(m));
    out.Set("nEmbd", llama_model_n_embd(m));
    const int32_t n_layer = llama_model_n_layer(m);
    out.Set("nLayer", n_layer);
    // per-layer queries abort inside llama.cpp on a vocabulary-only model (no layers)
    out.Set("nHead", n_layer > 0 ? llama_model_n_head(m) : 0);
    out.Set("nHeadKv", n_layer > 0 ? llama_model_n_head_kv(m) : 0);
    out.Set("nVocab", llama_vocab_n_tokens(vocab));
    out.Set("fileType", std::string(llama_ftype_name(llama_model_ftype(m))));
    const char * tmpl = llama_model_chat_template(m, nullptr);
    out.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());

    Napi::Object tokens = Napi::Object::New(env);
    tokens.Set("bos", llama_vocab_bos(vocab));
    tokens.Set("eos", llama_vocab_eos(vocab));
    tokens.Set("eot", llama_vocab_eot(vocab));
    tokens.Set("addBos", llama_vocab_get_add_bos(vocab));
    tokens.Set("addEos", llama_vocab_get_add_eos(vocab));
    Napi::Array eog = Napi::Array::New(env);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (llama_token t = 0; t < n_vocab; t++) {
        if (llama_vocab_is_eog(vocab, t)) eog.Set(eog.Length(), t);
    }
    tokens.Set("eog", eog);
    out.Set("specialTokens", tokens);

    Napi::Object meta = Napi::Object::New(env);
    const int32_t n_meta = llama_model_meta_count(m);
    std::vector<char> key(256), val(1024);
    for (int32_t i = 0; i < n_meta; i++) {
        int32_t kn = llama_model_meta_key_by_index(m, i, key.data(), key.size());
        if (kn < 0) continue;
        if ((size_t) kn >= key.size()) { key.resize(kn + 1); llama_model_meta_key_by_index(m, i, key.data(), key.size()); }
        int32_t vn = llama_model_meta_val_str_by_index(m, i, val.data(), val.size());
        if (vn < 0) continue;
        if ((size_t) vn >= val.size()) { val.resize(vn + 1); llama_model_meta_val_str_by_index(m, i, val.data(), val.size()); }
        meta.Set(std::string(key.data(), kn), std::string(val.data(), vn));
    }
    out.Set("metadata", meta);
    return out;
}

// tokenize(text, addSpecial, parseSpecial) -> Int32Array
Napi::Value ModelWrap::Tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const llama_vocab * vocab = Require(env)->vocab;
    const std::string text = info[0].As<Napi::String>();
    const bool add_special = info[1].ToBoolean();
    const bool parse_special = info[2].ToBoolean();
    if (text.size() > (size_t) INT32_MAX) Throw(env, "ERR_INVALID_ARG", "text is too long to tokenize");
    std::vector<llama_token> tokens(text.size() + 2);
    int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
    if (n < 0) {
        if (n == INT32_MIN) Throw(env, "ERR_INVALID_ARG", "tokenization overflowed");
        tokens.resize(-n);
        n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, n);
    std::copy(tokens.begin(), tokens.begin() + n, out.Data());
    return out;
}

// tokenPieces(tokens, special) -> Uint8Array: the raw bytes of the tokens' pieces, concatenated
// (pieces may hold partial UTF-8 characters; the caller decodes with a streaming decoder).
Napi::Value ModelWrap::TokenPieces(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const llama_vocab * vocab = Require(env)->vocab;
    std::vector<llama_token> tokens = ReadTokens(info[0]);
    const bool special = info[1].ToBoolean();
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    std::string bytes;
    char buf[256];
    for (llama_token t : tokens) {
        if (t < 0 || t >= n_vocab) Throw(env, "ERR_INVALID_ARG", "token id " + std::to_string(t) + " is outside the vocabulary");
        int32_t n = llama_token_to_piece(vocab, t, buf, sizeof(buf), 0, special);
        if (n > 0) bytes.append(buf, n);
    }
    Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
    std::copy(bytes.begin(), bytes.end(), out.Data());
    return out;
}

// dispose() -> Promise<void>: the weights are freed off the main thread
Napi::Value ModelWrap::Dispose(const Napi::CallbackInfo & info) {
    return ReleaseOffThread(info.Env(), "hermes3:disposeModel", std::move(handle_));
}

}  // namespace hermes3
