// weft/core/storage.hpp — where tensor bytes live: AlignedBuffer (owning, 64-byte aligned, for
// SIMD and cache lines) and MappedFile (a model file in memory, read-only: mapped, zero-copy, by
// default; or copied onto huge pages, FileLoad::copy).
#pragma once

#include <algorithm>
#include <atomic>
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

// How model files get into memory. A process-wide setting, like the thread count; loaders take
// it when they open a file.
enum class FileLoad {
    // Mapped (mmap), the default: nothing is copied, the model is ready at once and its pages are
    // the page cache's, shared between processes.
    map,
    // Read into private memory on 2 MiB pages where the OS allows (Linux transparent huge pages),
    // like llama.cpp's --no-mmap; weft::Llama then lays its quantized matrices out for decoding
    // (quant/interleave.hpp). Decoding reads every weight once per token, and on 4 KiB pages
    // of a mapped file each page costs a TLB miss: on the 2-core Zen 4 machine Q4_K and Q8_0 1B
    // models decoded 5–10 % faster copied. Costs the copy at load (a 663 MiB file in the page
    // cache there: 0.16–0.19 s run after run, 1.5 s on the first run after other work, while the
    // kernel assembles huge pages) and memory of its own for the file.
    copy,
};

namespace detail {
inline std::atomic<FileLoad> file_load{FileLoad::map};
}  // namespace detail

inline FileLoad file_load() { return detail::file_load.load(std::memory_order_relaxed); }
inline void set_file_load(FileLoad how) { detail::file_load.store(how, std::memory_order_relaxed); }

// A whole file in memory, read-only: mapped (model weights are used in place from it) or copied
// (FileLoad above). On systems without mmap the file is read into an aligned buffer instead.
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path, FileLoad how = file_load()) : path_(path) {
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
        if (size_ > 0 && how == FileLoad::copy) {
            try {
                copy_in(fd);
            } catch (...) {
                ::close(fd);
                throw;
            }
        } else if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                const int err = errno;
                ::close(fd);
                fail("cannot map '", path, "' (", size_, " bytes): ", std::strerror(err));
            }
            data_ = static_cast<const std::byte*>(p);
            mapped_ = {const_cast<std::byte*>(data_), size_};
        }
        ::close(fd);
#else
        (void)how;
        std::ifstream in(path, std::ios::binary | std::ios::ate);
        if (!in) fail("cannot open '", path, "'");
        size_ = static_cast<std::size_t>(in.tellg());
        fallback_ = AlignedBuffer(size_);
        copied_ = true;
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
            mapped_ = std::exchange(other.mapped_, {});
            copied_ = std::exchange(other.copied_, false);
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

    // Whether the bytes are this object's own memory (FileLoad::copy, or no mmap) rather than
    // the page cache's.
    bool copied() const { return size_ > 0 && copied_; }
    // Copies only: calls rewrite(bytes) with the whole copy writable, then makes it read-only
    // again (also if rewrite throws). Loaders lay weights out for decoding this way (Llama:
    // quant/interleave.hpp). One call for all of a model's rewrites: each protection change walks
    // the whole copy's page tables.
    template <class Rewrite>
    void edit(Rewrite&& rewrite) {
        if (!copied()) fail("'", path_, "' is mapped, not copied: its bytes cannot be rewritten");
        auto* bytes = const_cast<std::byte*>(data_);  // our own allocation (copy_in or fallback_)
#if defined(WEFT_HAVE_MMAP)
        if (::mprotect(mapped_.data(), mapped_.size(), PROT_READ | PROT_WRITE) != 0)
            fail("cannot make the copy of '", path_, "' writable: ", std::strerror(errno));
        struct ReadOnlyAgain {  // cannot fail for a range that was just made writable
            std::span<std::byte> m;
            ~ReadOnlyAgain() { ::mprotect(m.data(), m.size(), PROT_READ); }
        } guard{mapped_};
#endif
        rewrite(std::span<std::byte>(bytes, size_));
    }

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
#if defined(WEFT_HAVE_MMAP)
    // FileLoad::copy: anonymous memory aligned to 2 MiB (so that whole huge pages cover it),
    // filled from the file and then made read-only.
    void copy_in(int fd) {
        constexpr std::size_t huge = std::size_t(2) << 20;
        if (size_ > SIZE_MAX - 2 * huge) fail("cannot copy '", path_, "' (", size_, " bytes) into memory: too large");
        const std::size_t length = (size_ + huge - 1) / huge * huge + huge;
        void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) fail("cannot allocate ", size_, " bytes to copy '", path_, "' into: ", std::strerror(errno));
        mapped_ = {static_cast<std::byte*>(p), length};
        copied_ = true;
        const auto start = (reinterpret_cast<std::uintptr_t>(p) + huge - 1) / huge * huge;
        auto* data = reinterpret_cast<std::byte*>(start);
        data_ = data;
#if defined(MADV_HUGEPAGE)
        ::madvise(data, length - (start - reinterpret_cast<std::uintptr_t>(p)), MADV_HUGEPAGE);  // a hint: may be refused
#endif
        for (std::size_t done = 0; done < size_;) {
            const std::size_t want = std::min<std::size_t>(size_ - done, std::size_t(1) << 30);
            const ::ssize_t got = ::pread(fd, data + done, want, static_cast<::off_t>(done));
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                const int err = got < 0 ? errno : 0;
                unmap();
                fail("cannot read '", path_, "' at byte ", done, ": ", err ? std::strerror(err) : "the file ended early");
            }
            done += static_cast<std::size_t>(got);
        }
        ::mprotect(p, length, PROT_READ);
    }
#endif

    void unmap() {
#if defined(WEFT_HAVE_MMAP)
        if (mapped_.data()) ::munmap(mapped_.data(), mapped_.size());
#endif
        mapped_ = {};
        data_ = nullptr;
        size_ = 0;
        copied_ = false;
    }

    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    std::span<std::byte> mapped_;  // what to munmap: the file's mapping, or the copy's whole allocation
    bool copied_ = false;
    std::string path_;
#if !defined(WEFT_HAVE_MMAP)
    AlignedBuffer fallback_;
#endif
};

}  // namespace weft
