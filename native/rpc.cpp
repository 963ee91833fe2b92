// ggml-rpc is reached through its registry's proc addresses, as llama.cpp's tools do, so the
// same code works when backends are linked in and when they are loaded at run time.
#include "rpc.h"

#include "common.h"
#include "worker.h"

#include <map>
#include <mutex>
#include <thread>

namespace hermes3 {
namespace {

typedef ggml_backend_reg_t (*rpc_add_server_t)(const char * endpoint);
typedef void (*rpc_start_server_t)(const char * endpoint, const char * cache_dir, size_t n_threads, size_t n_devices, ggml_backend_dev_t * devices);

std::mutex g_mutex;
// one registry per endpoint: ggml-rpc keeps its connections there
std::map<std::string, ggml_backend_reg_t> g_servers;

void * Proc(const char * name) {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("RPC");
    if (!reg) throw NativeError("ERR_RPC_UNAVAILABLE", "this build of hermes3-native has no RPC backend (GGML_RPC); rebuild with npm run build:native");
    void * fn = ggml_backend_reg_get_proc_address(reg, name);
    if (!fn) throw NativeError("ERR_RPC_UNAVAILABLE", std::string("the RPC backend lacks ") + name);
    return fn;
}

}  // namespace

bool RpcAvailable() { return ggml_backend_reg_by_name("RPC") != nullptr; }

RpcQuietScope::RpcQuietScope() {
    ggml_backend_reg_t reg = ggml_backend_reg_by_name("RPC");
    if (reg) set_ = (void (*)(bool)) ggml_backend_reg_get_proc_address(reg, "ggml_backend_rpc_set_quiet");
    if (set_) set_(true);
}

RpcQuietScope::~RpcQuietScope() {
    if (set_) set_(false);
}

std::vector<ggml_backend_dev_t> RpcDevices(const std::string & endpoint) {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_servers.find(endpoint);
    ggml_backend_reg_t reg;
    if (it != g_servers.end()) {
        reg = it->second;
    } else {
        auto add = (rpc_add_server_t) Proc("ggml_backend_rpc_add_server");
        try {
            reg = add(endpoint.c_str());
        } catch (const std::exception & e) {
            throw NativeError("ERR_RPC_CONNECT", "cannot use the rpc-server at " + endpoint + ": " + e.what());
        }
        if (!reg) throw NativeError("ERR_RPC_CONNECT", "cannot use the rpc-server at " + endpoint);
        g_servers[endpoint] = reg;
    }
    std::vector<ggml_backend_dev_t> devices;
    for (size_t i = 0; i < ggml_backend_reg_dev_count(reg); i++) devices.push_back(ggml_backend_reg_dev_get(reg, i));
    return devices;
}

Napi::Value RpcDeviceInfo(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const std::string endpoint = info[0].As<Napi::String>();
    struct Dev {
        std::string name, description;
        size_t free = 0, total = 0;
    };
    return PromiseWorker<std::vector<Dev>>::Run(
        env, "hermes3:rpcDevices",
        [endpoint]() {
            std::vector<Dev> out;
            for (ggml_backend_dev_t dev : RpcDevices(endpoint)) {
                Dev d;
                d.name = ggml_backend_dev_name(dev);
                d.description = ggml_backend_dev_description(dev);
                try {
                    ggml_backend_dev_memory(dev, &d.free, &d.total);
                } catch (const std::exception & e) {
                    throw NativeError("ERR_RPC_CONNECT", "the rpc-server at " + endpoint + " did not answer: " + e.what());
                }
                out.push_back(d);
            }
            return out;
        },
        [](Napi::Env env, std::vector<Dev> & devs) -> Napi::Value {
            Napi::Array arr = Napi::Array::New(env);
            for (auto & d : devs) {
                Napi::Object o = Napi::Object::New(env);
                o.Set("name", d.name);
                o.Set("description", d.description);
                o.Set("freeBytes", Napi::Number::New(env, (double) d.free));
                o.Set("totalBytes", Napi::Number::New(env, (double) d.total));
                arr.Set(arr.Length(), o);
            }
            return arr;
        });
}

Napi::Value RpcStartServer(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    const std::string endpoint = info[0].As<Napi::String>();
    const std::string cacheDir = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
    const size_t threads = info[2].As<Napi::Number>().Uint32Value();
    const std::string deviceName = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
    const double memLimit = info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : 0;
    rpc_start_server_t start;
    try {
        start = (rpc_start_server_t) Proc("ggml_backend_rpc_start_server");
        if (memLimit > 0) {
            auto setLimit = (void (*)(size_t)) Proc("ggml_backend_rpc_set_memory_limit");
            setLimit((size_t) memLimit);
        }
    } catch (const NativeError & e) {
        Throw(env, e.code, e.what());
    }
    std::vector<ggml_backend_dev_t> devices;
    if (!deviceName.empty()) {
        ggml_backend_dev_t dev = ggml_backend_dev_by_name(deviceName.c_str());
        if (!dev) Throw(env, "ERR_OPTIONS", "no device named " + deviceName + " in this build (hermes3 doctor lists them)");
        devices.push_back(dev);
    } else {
        // the server's default: the first GPU, else the CPU
        for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
            ggml_backend_dev_t dev = ggml_backend_dev_get(i);
            if (ggml_backend_dev_type(dev) == GGML_BACKEND_DEVICE_TYPE_GPU && std::string(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev))) != "RPC") {
                devices.push_back(dev);
                break;
            }
        }
        if (devices.empty()) {
            ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
            if (cpu) devices.push_back(cpu);
        }
    }
    std::thread([start, endpoint, cacheDir, threads, devices]() mutable {
        try {
            start(endpoint.c_str(), cacheDir.empty() ? nullptr : cacheDir.c_str(), threads, devices.size(), devices.data());
        } catch (const std::exception & e) {
            fprintf(stderr, "rpc-server stopped: %s\n", e.what());
        }
    }).detach();
    return env.Undefined();
}

}  // namespace hermes3
