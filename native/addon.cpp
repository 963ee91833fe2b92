// Module entry: process-wide backend setup, class registration and the free functions.
#include "common.h"
#include "loop_queue.h"
#include "context.h"
#include "embedding.h"
#include "log.h"
#include "lora.h"
#include "model.h"
#include "rpc.h"
#include "sampler.h"
#include "worker.h"

#include "llama.h"
#include "ggml-backend.h"

#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef HERMES3_BACKEND_DL
#include <dirent.h>
#include <dlfcn.h>
#endif

#ifndef HERMES3_LLAMA_COMMIT
#define HERMES3_LLAMA_COMMIT "unknown"
#endif

namespace hermes3 {
namespace {

std::once_flag g_backend_once;
std::string g_backend_dir;
// backend libraries found beside the addon (run-time loaded builds): file, and why one did not load
struct BackendLibrary {
    std::string file;
    std::string error;  // empty: it loads
};
std::vector<BackendLibrary> g_libraries;

// With run-time loaded backends, the libraries lie next to the addon: load the best CPU variant
// and any GPU backend found there.
void LoadBackends() {
#ifdef HERMES3_BACKEND_DL
    Dl_info info{};
    if (dladdr(reinterpret_cast<void *>(&LoadBackends), &info) && info.dli_fname) {
        std::string path(info.dli_fname);
        g_backend_dir = path.substr(0, path.find_last_of('/'));
        ggml_backend_load_all_from_path(g_backend_dir.c_str());
        // what each library beside the addon needs: a GPU backend whose driver library is missing
        // fails to open, and dlerror says which library that is
        if (DIR * dir = opendir(g_backend_dir.c_str())) {
            while (dirent * e = readdir(dir)) {
                const std::string name = e->d_name;
                if (name.rfind("libggml-", 0) != 0 || name.find(".so") == std::string::npos) continue;
                BackendLibrary lib{name, ""};
                void * h = dlopen((g_backend_dir + "/" + name).c_str(), RTLD_NOW | RTLD_LOCAL);
                if (!h) {
                    const char * why = dlerror();
                    lib.error = why ? why : "cannot be opened";
                } else {
                    dlclose(h);
                }
                g_libraries.push_back(lib);
            }
            closedir(dir);
        }
    } else {
        ggml_backend_load_all();
    }
#endif
}

// quantize(input, output, ftype, threads) -> Promise<void>
Napi::Value Quantize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const std::string input = info[0].As<Napi::String>();
    const std::string output = info[1].As<Napi::String>();
    const int32_t ftype = info[2].As<Napi::Number>().Int32Value();
    const int32_t threads = info[3].As<Napi::Number>().Int32Value();
    return PromiseWorker<bool>::Run(
        env, "hermes3:quantize",
        [input, output, ftype, threads]() {
            llama_model_quantize_params p = llama_model_quantize_default_params();
            p.ftype = (llama_ftype) ftype;
            p.nthread = threads;
            BeginErrorCapture();
            const uint32_t rc = llama_model_quantize(input.c_str(), output.c_str(), &p);
            std::string errors = EndErrorCapture();
            if (rc != 0) throw NativeError("ERR_QUANTIZE", errors.empty() ? "llama.cpp could not quantize the model" : errors);
            return true;
        },
        [](Napi::Env env, bool &) -> Napi::Value { return env.Undefined(); });
}

Napi::Value SystemInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("llamaCommit", HERMES3_LLAMA_COMMIT);
    out.Set("systemInfo", llama_print_system_info());
    out.Set("supportsGpuOffload", llama_supports_gpu_offload());
    out.Set("supportsMmap", llama_supports_mmap());
    out.Set("supportsMlock", llama_supports_mlock());
    out.Set("maxDevices", Napi::Number::New(env, (double) llama_max_devices()));
    out.Set("hardwareConcurrency", std::thread::hardware_concurrency());
    return out;
}

// backendInfo() -> { devices: [...], backends: [{ name, features }] }
Napi::Value BackendInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object out = Napi::Object::New(env);
    Napi::Array devices = Napi::Array::New(env);
    for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        size_t free = 0, total = 0;
        ggml_backend_dev_memory(dev, &free, &total);
        static const char * types[] = {"cpu", "gpu", "igpu", "accel"};
        const int type = (int) ggml_backend_dev_type(dev);
        Napi::Object d = Napi::Object::New(env);
        d.Set("name", ggml_backend_dev_name(dev));
        d.Set("description", ggml_backend_dev_description(dev));
        d.Set("type", type >= 0 && type < 4 ? types[type] : "unknown");
        d.Set("backend", ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
        d.Set("freeBytes", Napi::Number::New(env, (double) free));
        d.Set("totalBytes", Napi::Number::New(env, (double) total));
        devices.Set(devices.Length(), d);
    }
    out.Set("devices", devices);
    Napi::Array backends = Napi::Array::New(env);
    for (size_t i = 0; i < ggml_backend_reg_count(); i++) {
        ggml_backend_reg_t reg = ggml_backend_reg_get(i);
        Napi::Object b = Napi::Object::New(env);
        b.Set("name", ggml_backend_reg_name(reg));
        Napi::Object features = Napi::Object::New(env);
        auto get = (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
        if (get) {
            for (ggml_backend_feature * f = get(reg); f && f->name; f++) features.Set(f->name, f->value);
        }
        b.Set("features", features);
        backends.Set(backends.Length(), b);
    }
    out.Set("backends", backends);
#ifdef HERMES3_BACKEND_DL
    out.Set("dynamic", true);
    out.Set("directory", g_backend_dir);
    Napi::Array libraries = Napi::Array::New(env);
    for (const auto & lib : g_libraries) {
        Napi::Object l = Napi::Object::New(env);
        l.Set("file", lib.file);
        if (!lib.error.empty()) l.Set("error", lib.error);
        libraries.Set(libraries.Length(), l);
    }
    out.Set("libraries", libraries);
#else
    out.Set("dynamic", false);
#endif
    return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    std::call_once(g_backend_once, []() {
        InstallLogHandler();
        // ggml aborts the process on failed assertions and on RPC failures (a remote server that
        // went away): turn those into exceptions, which llama.cpp's entry points and our workers
        // catch and report as errors, so the host process survives
        ggml_set_abort_callback([](const char * message) { throw NativeError("ERR_GGML_ABORT", message); });
        LoadBackends();
        llama_backend_init();
    });
    auto * data = new AddonData();
    env.SetInstanceData(data);
    data->loopQueue = LoopQueue::Install(env);
    env.AddCleanupHook([env]() { ReleaseLogger(env); });

    Napi::Function model = ModelWrap::Define(env);
    Napi::Function context = ContextWrap::Define(env);
    Napi::Function sampler = SamplerWrap::Define(env);
    data->modelConstructor = Napi::Persistent(model);
    data->contextConstructor = Napi::Persistent(context);
    data->samplerConstructor = Napi::Persistent(sampler);
    data->embeddingConstructor = Napi::Persistent(EmbeddingWrap::Define(env));
    Napi::Function lora = LoraWrap::Define(env);
    data->loraConstructor = Napi::Persistent(lora);

    exports.Set("Model", model);
    exports.Set("Context", context);
    exports.Set("Sampler", sampler);
    exports.Set("loadModel", Napi::Function::New(env, ModelWrap::Load, "loadModel"));
    exports.Set("createContext", Napi::Function::New(env, ContextWrap::Create, "createContext"));
    exports.Set("createEmbeddingContext", Napi::Function::New(env, EmbeddingWrap::Create, "createEmbeddingContext"));
    exports.Set("Lora", lora);
    exports.Set("loadLora", Napi::Function::New(env, LoraWrap::Load, "loadLora"));
    exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
    exports.Set("setLogger", Napi::Function::New(env, SetLogger, "setLogger"));
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
    exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
    exports.Set("rpcDevices", Napi::Function::New(env, RpcDeviceInfo, "rpcDevices"));
    exports.Set("rpcStartServer", Napi::Function::New(env, RpcStartServer, "rpcStartServer"));
    return exports;
}

}  // namespace
}  // namespace hermes3

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return hermes3::Init(env, exports); }

NODE_API_MODULE(hermes3, InitModule)
