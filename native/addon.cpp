// Module entry: process-wide backend setup, class registration and the free functions.
#include "common.h"
#include "context.h"
#include "log.h"
#include "model.h"
#include "sampler.h"
#include "worker.h"

#include "llama.h"

#include <mutex>
#include <thread>

#ifndef HERMES3_LLAMA_COMMIT
#define HERMES3_LLAMA_COMMIT "unknown"
#endif

namespace hermes3 {
namespace {

std::once_flag g_backend_once;

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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
    std::call_once(g_backend_once, []() {
        InstallLogHandler();
        llama_backend_init();
    });
    auto * data = new AddonData();
    env.SetInstanceData(data);
    env.AddCleanupHook([env]() { ReleaseLogger(env); });

    Napi::Function model = ModelWrap::Define(env);
    Napi::Function context = ContextWrap::Define(env);
    Napi::Function sampler = SamplerWrap::Define(env);
    data->modelConstructor = Napi::Persistent(model);
    data->contextConstructor = Napi::Persistent(context);
    data->samplerConstructor = Napi::Persistent(sampler);

    exports.Set("Model", model);
    exports.Set("Context", context);
    exports.Set("Sampler", sampler);
    exports.Set("loadModel", Napi::Function::New(env, ModelWrap::Load, "loadModel"));
    exports.Set("createContext", Napi::Function::New(env, ContextWrap::Create, "createContext"));
    exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
    exports.Set("setLogger", Napi::Function::New(env, SetLogger, "setLogger"));
    exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
    return exports;
}

}  // namespace
}  // namespace hermes3

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return hermes3::Init(env, exports); }

NODE_API_MODULE(hermes3, InitModule)
