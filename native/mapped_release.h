// Releasing the mapped pages of weights that the CPU backend copies into buffers of its own.
//
// With mmap, llama.cpp maps the whole GGUF file. Tensors that ggml's CPU "extra" buffer types
// (CPU_REPACK, AMX, ...) hold are copied out of the mapping at load, interleaved for faster
// kernels; the mapped pages they were read from are never used again, yet stay resident beside
// the copy, so peak memory is about the file twice over. While a load runs with
// ScopedMappedRelease, each such copy drops the page-aligned interior of its source range
// (madvise MADV_DONTNEED: the page cache keeps the file, the process stops holding it), so the
// process holds the file about once, during the load as well as after it. Tensors used straight
// from the mapping are untouched.
#pragma once

#include <cstddef>

namespace hermes3 {

// Wraps the CPU backend's extra buffer types once per process (call after the backends are
// loaded, before the first model load). Returns the number of buffer types wrapped.
size_t InstallMappedRelease();

// While alive on a thread, extra-buffer copies made on that thread release their source pages.
// Use only around a load that reads from a memory-mapped file.
class ScopedMappedRelease {
  public:
    explicit ScopedMappedRelease(bool enabled);
    ~ScopedMappedRelease();
    ScopedMappedRelease(const ScopedMappedRelease &) = delete;
    ScopedMappedRelease & operator=(const ScopedMappedRelease &) = delete;

    // Bytes of mapped pages released on this thread since construction.
    size_t releasedBytes() const;

  private:
    bool previous_;
    size_t start_;
};

}  // namespace hermes3
