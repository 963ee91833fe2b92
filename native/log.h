// Routes llama.cpp and ggml log lines to a JS function; silent when none is set.
#pragma once

#include <napi.h>

#include <string>

namespace hermes3 {

void InstallLogHandler();
// setLogger(fn | null, minLevel): fn(level: 'debug'|'info'|'warn'|'error', line: string)
Napi::Value SetLogger(const Napi::CallbackInfo & info);
void ReleaseLogger(napi_env env);
// Collect the error lines llama.cpp logs on this thread, to put them in a thrown error.
void BeginErrorCapture();
std::string EndErrorCapture();

}  // namespace hermes3
