#include "log.h"

#include "llama.h"

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

namespace hermes3 {
namespace {

struct LogLine {
    int level;
    std::string text;
};

void CallLogger(Napi::Env env, Napi::Function fn, std::nullptr_t *, LogLine * line) {
    std::unique_ptr<LogLine> owned(line);
    if (env == nullptr || fn.IsEmpty()) return;
    static const char * names[] = {"debug", "debug", "info", "warn", "error", "info"};
    const char * name = names[line->level >= 0 && line->level <= 5 ? line->level : 2];
    try {
        fn.Call({Napi::String::New(env, name), Napi::String::New(env, line->text)});
    } catch (const Napi::Error &) {
        // a throwing logger must not take generation down
    }
}

using LogTsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, LogLine, CallLogger>;

std::mutex g_mutex;
LogTsfn g_tsfn;
napi_env g_env = nullptr;
bool g_active = false;
int g_min_level = GGML_LOG_LEVEL_WARN;

thread_local std::string t_pending;
thread_local bool t_capturing = false;
thread_local std::string t_errors;
thread_local int t_level = GGML_LOG_LEVEL_INFO;

void OnLog(enum ggml_log_level level, const char * text, void *) {
    if (level != GGML_LOG_LEVEL_CONT) t_level = level;
    if (t_capturing && t_level == GGML_LOG_LEVEL_ERROR) t_errors += text;
    if (t_level < g_min_level && t_level != GGML_LOG_LEVEL_NONE) return;
    t_pending += text;
    size_t nl;
    while ((nl = t_pending.find('\n')) != std::string::npos) {
        std::string line = t_pending.substr(0, nl);
        t_pending.erase(0, nl + 1);
        std::lock_guard<std::mutex> lock(g_mutex);
        if (!g_active || line.empty()) continue;
        auto * payload = new LogLine{t_level, std::move(line)};
        if (g_tsfn.NonBlockingCall(payload) != napi_ok) delete payload;
    }
}

}  // namespace

void BeginErrorCapture() {
    t_capturing = true;
    t_errors.clear();
}

std::string EndErrorCapture() {
    t_capturing = false;
    std::string out;
    out.swap(t_errors);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

void InstallLogHandler() { llama_log_set(OnLog, nullptr); }

void ReleaseLogger(napi_env env) {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_active && g_env == env) {
        g_tsfn.Release();
        g_active = false;
        g_env = nullptr;
    }
}

Napi::Value SetLogger(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    ReleaseLogger(g_env);
    if (info.Length() >= 1 && info[0].IsFunction()) {
        std::lock_guard<std::mutex> lock(g_mutex);
        g_min_level = info.Length() >= 2 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : GGML_LOG_LEVEL_WARN;
        g_tsfn = LogTsfn::New(env, info[0].As<Napi::Function>(), "hermes3:log", 0, 1);
        g_tsfn.Unref(env);
        g_env = env;
        g_active = true;
    }
    return env.Undefined();
}

}  // namespace hermes3
