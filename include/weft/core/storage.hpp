// weft/core/storage.hpp — where tensor bytes live: AlignedBuffer (owning, 64-byte aligned, for
// SIMD and cache lines) and MappedFile (a read-only memory map of a model file; zero-copy).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <utility>

#include "weft/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define WEFT_HAVE_MMAP 1
#else
#include <fstream>
#endif

namespace weft {

inline constexpr std::size_t buffer_alignment = 64;

// An owning, 64-byte aligned block of bytes. Moves, never copies implicitly.
class AlignedBuffer {
public:
    AlignedBuffer() = default;
    explicit AlignedBuffer(std::size_t bytes) : size_(bytes) {
        if (bytes == 0) return;
        data_ = static_cast<std::byte*>(::operator new(round_up(bytes), std::align_val_t{buffer_alignment}, std::nothrow));
        if (!data_) fail("AlignedBuffer: cannot allocate ", bytes, " bytes");
    }
    AlignedBuffer(AlignedBuffer&& other) noexcept
        : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
        if (this != &other) {
            release();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    ~AlignedBuffer() { release(); }

    std::byte* data() { return data_; }
    const std::byte* data() const { return data_; }
    std::size_t size() const { return size_; }

private:
    // Allocations are padded to whole cache lines so vector loads of the last line stay inside.
    static std::size_t round_up(std::size_t n) {
        if (n > SIZE_MAX - buffer_alignment) fail("AlignedBuffer: size ", n, " is too large");
        return (n + buffer_alignment - 1) / buffer_alignment * buffer_alignment;
    }
    void release() {
        if (data_) ::operator delete(data_, std::align_val_t{buffer_alignment});
        data_ = nullptr;
        size_ = 0;
    }

    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

// A whole file mapped read-only into memory. Model weights are used in place from it.
// On systems without mmap the file is read into an aligned buffer instead.
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path) : path_(path) {
#if defined(WEFT_HAVE_MMAP)
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open '", path, "': ", std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            const int err = errno;
            ::close(fd);
            fail("cannot stat '", path, "': ", std::strerror(err));
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            fail("'", path, "' is not a regular file");
        }
        size_ = static_cast<std::size_t>(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int err = errno;
                ::close(fd);
                fail("cannot map '", path, "' (", size_, " bytes): ", std::strerror(err));
            }
            data_ = static_cast<const std::byte*>(p);
        }
        ::close(fd);
#else
        std::ifstream in(path, std::ios::binary | std::ios::ate);
        if (!in) fail("cannot open '", path, "'");
        size_ = static_cast<std::size_t>(in.tellg());
        fallback_ = AlignedBuffer(size_);
        in.seekg(0);
        if (!in.read(reinterpret_cast<char*>(fallback_.data()), static_cast<std::streamsize>(size_)))
            fail("cannot read '", path, "'");
        data_ = fallback_.data();
#endif
    }
    MappedFile(MappedFile&& other) noexcept { *this = std::move(other); }
    MappedFile& operator=(MappedFile&& other) noexcept {
        if (this != &other) {
            unmap();
            data_ = std::exchange(other.data_, nullptr);
            size_ = std::exchange(other.size_, 0);
            path_ = std::move(other.path_);
#if !defined(WEFT_HAVE_MMAP)
            fallback_ = std::move(other.fallback_);
#endif
        }
        return *this;
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    ~MappedFile() { unmap(); }

    const std::byte* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::span<const std::byte> bytes() const { return {data_, size_}; }
    const std::string& path() const { return path_; }

    // Reads every page of the mapping into memory now instead of on first use, calling
    // progress(bytes_done, bytes_total) after each chunk (for a progress bar). Does not copy.
    template <class Progress>
    void prefetch(Progress&& progress) const {
        constexpr std::size_t chunk = std::size_t(64) << 20, page = 4096;
#if defined(WEFT_HAVE_MMAP)
        if (data_) ::madvise(const_cast<std::byte*>(data_), size_, MADV_WILLNEED);
#endif
        unsigned sum = 0;
        for (std::size_t begin = 0; begin < size_; begin += chunk) {
            const std::size_t end = std::min(size_, begin + chunk);
            for (std::size_t i = begin; i < end; i += page) sum += static_cast<unsigned>(data_[i]);
            progress(end, size_);
        }
        volatile unsigned sink = sum;
        (void)sink;
    }
    void prefetch() const { prefetch([](std::size_t, std::size_t) {}); }

private:
    void unmap() {
#if defined(WEFT_HAVE_MMAP)
        if (data_) ::munmap(const_cast<std::byte*>(data_), size_);
#endif
        data_ = nullptr;
        size_ = 0;
    }

    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::string path_;
#if !defined(WEFT_HAVE_MMAP)
    AlignedBuffer fallback_;
#endif
};

}  // namespace weft
