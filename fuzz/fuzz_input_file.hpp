// fuzz/fuzz_input_file.hpp — hands a fuzz input to weft loaders that open a path: the bytes go into
// one anonymous in-memory file (memfd, Linux) that the loader opens as /proc/self/fd/N, so no
// input touches the disk. Where memfd is missing, a file under $TMPDIR (or /tmp) is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

namespace weft_fuzz {

class InputFile {
public:
    InputFile() {
#if defined(__linux__) && defined(MFD_CLOEXEC)
        fd_ = ::memfd_create("weft-fuzz-input", MFD_CLOEXEC);
        if (fd_ >= 0) path_ = "/proc/self/fd/" + std::to_string(fd_);
#endif
        if (fd_ < 0) {
            const char* tmp = std::getenv("TMPDIR");
            path_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/weft-fuzz-input-" + std::to_string(::getpid());
            fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        }
        if (fd_ < 0) {
            std::perror("weft fuzz: cannot create the input file");
            std::abort();
        }
    }
    ~InputFile() {
        ::close(fd_);
        if (path_.rfind("/proc/", 0) != 0) ::unlink(path_.c_str());
    }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    // Replaces the file's contents with data[0, size) and returns a path that opens it.
    const std::string& write(const std::uint8_t* data, std::size_t size) {
        if (::ftruncate(fd_, 0) != 0) std::abort();
        std::size_t done = 0;
        while (done < size) {
            const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n <= 0) std::abort();
            done += static_cast<std::size_t>(n);
        }
        return path_;
    }

private:
    int fd_ = -1;
    std::string path_;
};

// A broken invariant: libFuzzer reports it as a crash (the trap's SIGILL), with the input saved.
[[noreturn]] inline void invariant_failed(const char* what, const char* file, int line) {
    std::fprintf(stderr, "weft fuzz: invariant broken at %s:%d: %s\n", file, line, what);
    std::fflush(stderr);
    __builtin_trap();
}

}  // namespace weft_fuzz

#define WEFT_FUZZ_CHECK(cond) ((cond) ? void(0) : ::weft_fuzz::invariant_failed(#cond, __FILE__, __LINE__))
