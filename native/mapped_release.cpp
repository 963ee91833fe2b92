#include "mapped_release.h"

#include "ggml-backend.h"
// the buffer and buffer-type interfaces: the copy step of an extra buffer type is wrapped here
#include "ggml-backend-impl.h"

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace hermes3 {
namespace {

using AllocFn = ggml_backend_buffer_t (*)(ggml_backend_buffer_type_t, size_t);
using SetTensorFn = void (*)(ggml_backend_buffer_t, ggml_tensor *, const void *, size_t, size_t);

// One wrapped buffer type. Filled once, before any model is loaded, then only read.
struct Wrapped {
    ggml_backend_buffer_type_t buft = nullptr;
    AllocFn alloc = nullptr;
    std::atomic<SetTensorFn> setTensor{nullptr};
};

std::array<Wrapped, 16> g_wrapped;
size_t g_count = 0;

thread_local bool t_enabled = false;
thread_local size_t t_released = 0;

Wrapped * Find(ggml_backend_buffer_type_t buft) {
    for (size_t i = 0; i < g_count; i++) {
        if (g_wrapped[i].buft == buft) return &g_wrapped[i];
    }
    return nullptr;
}

// Drops this process's mapping of the whole pages inside [data, data + size). The partial pages
// at either end may hold a neighbouring tensor that is used from the mapping, so they stay.
// Linux only: elsewhere MADV_DONTNEED on a file mapping need not free anything.
void Release(const void * data, size_t size) {
#if defined(__linux__)
    static const uintptr_t page = (uintptr_t) sysconf(_SC_PAGESIZE);
    const uintptr_t begin = ((uintptr_t) data + page - 1) & ~(page - 1);
    const uintptr_t end = ((uintptr_t) data + size) & ~(page - 1);
    if (end <= begin) return;
    // fails harmlessly (EINVAL) on locked pages: with mlock the file stays resident by request
    if (madvise((void *) begin, end - begin, MADV_DONTNEED) == 0) t_released += end - begin;
#else
    (void) data;
    (void) size;
#endif
}

void SetTensorThenRelease(ggml_backend_buffer_t buffer, ggml_tensor * tensor, const void * data, size_t offset, size_t size) {
    Wrapped * w = Find(buffer->buft);
    w->setTensor.load(std::memory_order_acquire)(buffer, tensor, data, offset, size);
    // the loader hands over whole tensors straight from the mapping; the copy is made, so the
    // source pages are no longer needed
    if (t_enabled && offset == 0) Release(data, size);
}

ggml_backend_buffer_t AllocWrapped(ggml_backend_buffer_type_t buft, size_t size) {
    Wrapped * w = Find(buft);
    ggml_backend_buffer_t buffer = w->alloc(buft, size);
    if (buffer && buffer->buft == buft && buffer->iface.set_tensor && buffer->iface.set_tensor != SetTensorThenRelease) {
        w->setTensor.store(buffer->iface.set_tensor, std::memory_order_release);
        buffer->iface.set_tensor = SetTensorThenRelease;
    }
    return buffer;
}

}  // namespace

size_t InstallMappedRelease() {
    static std::once_flag once;
    std::call_once(once, [] {
        ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
        if (!cpu) return;
        auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(
            ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
        if (!get_extra) return;
        for (ggml_backend_buffer_type_t * b = get_extra(cpu); b && *b && g_count < g_wrapped.size(); b++) {
            ggml_backend_buffer_type_t buft = *b;
            if (!buft->iface.alloc_buffer || buft->iface.alloc_buffer == AllocWrapped) continue;
            Wrapped & w = g_wrapped[g_count];
            w.buft = buft;
            w.alloc = buft->iface.alloc_buffer;
            g_count++;
            buft->iface.alloc_buffer = AllocWrapped;
        }
    });
    return g_count;
}

ScopedMappedRelease::ScopedMappedRelease(bool enabled) : previous_(t_enabled), start_(t_released) { t_enabled = enabled; }

ScopedMappedRelease::~ScopedMappedRelease() { t_enabled = previous_; }

size_t ScopedMappedRelease::releasedBytes() const { return t_released - start_; }

}  // namespace hermes3
