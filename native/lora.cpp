#include "lora.h"

#include "log.h"
#include "model.h"
#include "worker.h"

#include <map>
#include <string>

namespace hermes3 {

Napi::Function LoraWrap::Define(Napi::Env env) {
    return DefineClass(env, "Lora", {
        InstanceMethod<&LoraWrap::Info>("info"),
        InstanceMethod<&LoraWrap::Dispose>("dispose"),
    });
}

// new Lora(External<shared_ptr<LoraHandle>>): takes over the handle created by Load()
LoraWrap::LoraWrap(const Napi::CallbackInfo & info)
    : Napi::ObjectWrap<LoraWrap>(info), handle_(TakeHandle<LoraHandle>(info, "Lora objects are created by model.loadLora()")) {}

const std::shared_ptr<LoraHandle> & LoraWrap::Require(Napi::Env env) const {
    if (!handle_) Throw(env, "ERR_DISPOSED", "the LoRA adapter has been disposed");
    return handle_;
}

Napi::Value LoraWrap::Load(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    std::shared_ptr<ModelHandle> model = ModelWrap::Unwrap(info[0].As<Napi::Object>())->Require(env);
    const std::string path = info[1].As<Napi::String>();
    using Result = std::shared_ptr<LoraHandle>;
    return PromiseWorker<Result>::Run(
        env, "hermes3:loadLora",
        [model, path]() -> Result {
            llama_adapter_lora * adapter = nullptr;
            std::string errors;
            {
                std::lock_guard<std::mutex> lock(model->adapters);
                BeginErrorCapture();
                try {
                    adapter = llama_adapter_lora_init(model->model, path.c_str());
                } catch (const std::exception & e) {
                    EndErrorCapture();
                    throw NativeError("ERR_LORA_LOAD", std::string("llama.cpp failed while loading the LoRA adapter: ") + e.what());
                }
                errors = EndErrorCapture();
            }
            if (!adapter) throw NativeError("ERR_LORA_LOAD", errors.empty() ? "llama.cpp could not load the LoRA adapter" : errors);
            return std::make_shared<LoraHandle>(model, adapter);
        },
        [](Napi::Env env, Result & handle) { return NewWrapped(env, GetAddonData(env).loraConstructor, handle); },
        {}, nullptr, model->priority);
}

Napi::Value LoraWrap::Info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const llama_adapter_lora * adapter = Require(env)->adapter;
    Napi::Object meta = Napi::Object::New(env);
    std::vector<char> key(256), val(1024);
    const int32_t n = llama_adapter_meta_count(adapter);
    for (int32_t i = 0; i < n; i++) {
        int32_t kn = llama_adapter_meta_key_by_index(adapter, i, key.data(), key.size());
        if (kn < 0) continue;
        if ((size_t) kn >= key.size()) { key.resize(kn + 1); llama_adapter_meta_key_by_index(adapter, i, key.data(), key.size()); }
        int32_t vn = llama_adapter_meta_val_str_by_index(adapter, i, val.data(), val.size());
        if (vn < 0) continue;
        if ((size_t) vn >= val.size()) { val.resize(vn + 1); llama_adapter_meta_val_str_by_index(adapter, i, val.data(), val.size()); }
        meta.Set(std::string(key.data(), kn), std::string(val.data(), vn));
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("metadata", meta);
    return out;
}

// dispose() -> Promise<void>: freed off the main thread, once no context applies it
Napi::Value LoraWrap::Dispose(const Napi::CallbackInfo & info) {
    return ReleaseOffThread(info.Env(), "hermes3:disposeLora", std::move(handle_));
}

std::vector<LoraUse> ReadLoraList(Napi::Env env, const Napi::Value & value, const std::shared_ptr<ModelHandle> & model) {
    std::vector<LoraUse> out;
    if (!value.IsArray()) return out;
    Napi::Array list = value.As<Napi::Array>();
    Napi::Function lora = GetAddonData(env).loraConstructor.Value();
    for (uint32_t i = 0; i < list.Length(); i++) {
        Napi::Object entry = list.Get(i).As<Napi::Object>();
        Napi::Value a = entry.Get("adapter");
        if (!a.IsObject() || !a.As<Napi::Object>().InstanceOf(lora)) Throw(env, "ERR_INVALID_ARG", "expected a LoRA adapter from model.loadLora()");
        const std::shared_ptr<LoraHandle> & handle = LoraWrap::Unwrap(a.As<Napi::Object>())->Require(env);
        if (handle->model != model) Throw(env, "ERR_INVALID_ARG", "the LoRA adapter was loaded for another model");
        out.push_back({handle, entry.Get("scale").As<Napi::Number>().FloatValue()});
    }
    return out;
}

namespace {

std::map<llama_adapter_lora *, float> InEffect(const std::vector<LoraUse> & list) {
    std::map<llama_adapter_lora *, float> out;
    for (const LoraUse & u : list) {
        if (u.scale != 0.0f) out.emplace(u.adapter->adapter, u.scale);
    }
    return out;
}

}  // namespace

bool ApplyLoras(ContextHandle & context, std::vector<LoraUse> & next) {
    const bool changed = InEffect(context.loras) != InEffect(next);
    if (changed) {
        std::vector<llama_adapter_lora *> adapters;
        std::vector<float> scales;
        for (const LoraUse & u : next) {
            adapters.push_back(u.adapter->adapter);
            scales.push_back(u.scale);
        }
        llama_set_adapters_lora(context.ctx, adapters.data(), adapters.size(), scales.data());
    }
    context.loras.swap(next);
    return changed;
}

}  // namespace hermes3
