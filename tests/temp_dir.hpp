// tests/temp_dir.hpp — a scratch directory for tests that write files: created under the current
// directory (tests run from the build tree) and removed with everything in it at scope exit.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace weft_test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& name) : path(std::filesystem::current_path() / ("weft_test_" + name)) {
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string file(const std::string& name) const { return (path / name).string(); }
    // Writes `contents` to the file `name` and returns its path.
    std::string write(const std::string& name, const std::string& contents) const {
        std::ofstream out(path / name, std::ios::binary | std::ios::trunc);
        out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
        return file(name);
    }
};

}  // namespace weft_test
