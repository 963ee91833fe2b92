// llama.cpp's RPC backend (ggml-rpc): the devices of remote rpc-servers for a model's device
// list, and an rpc-server run in a thread of this process.
#pragma once

#include <napi.h>

#include "ggml-backend.h"

#include <string>
#include <vector>

namespace hermes3 {

// The devices an rpc-server at `endpoint` (host:port) offers. Throws NativeError when the RPC
// backend is not in this build or the server cannot be reached.
std::vector<ggml_backend_dev_t> RpcDevices(const std::string & endpoint);

// rpcDevices(endpoint) -> Promise<Array<{ name, description, freeBytes, totalBytes }>>
Napi::Value RpcDeviceInfo(const Napi::CallbackInfo & info);

// rpcStartServer(endpoint, cacheDir | null, threads, deviceName | null, memoryLimitBytes | 0): serves
// in a thread of its own until the process ends
Napi::Value RpcStartServer(const Napi::CallbackInfo & info);

// whether this build has the RPC backend
bool RpcAvailable();

// While alive, RPC failures in this thread are ignored rather than raised (freeing contexts and
// models, where nothing may throw).
class RpcQuietScope {
  public:
    RpcQuietScope();
    ~RpcQuietScope();
    RpcQuietScope(const RpcQuietScope &) = delete;
    RpcQuietScope & operator=(const RpcQuietScope &) = delete;

  private:
    void (*set_)(bool) = nullptr;
};

}  // namespace hermes3
