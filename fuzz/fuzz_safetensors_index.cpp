// fuzz/fuzz_safetensors_index.cpp — libFuzzer target for the sharded-checkpoint index
// (model.safetensors.index.json) read by weft::safetensors::Checkpoint (io/safetensors.hpp).
// Each input is the index file of a directory that holds two small valid shards; a third valid
// file lies outside the directory. A bad index must end in weft::Error; an accepted one must map
// only shards inside the directory (never ../outside.safetensors, never an absolute path) and
// every name it lists must resolve to a tensor of the shard it names.
#include <weft/io/safetensors.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "fuzz_input_file.hpp"

namespace {

namespace fs = std::filesystem;

// A valid .safetensors file with f32 tensors of 2 elements each.
void write_shard(const fs::path& path, std::initializer_list<const char*> names) {
    std::string header = "{";
    std::uint64_t offset = 0;
    for (const char* name : names) {
        if (header.size() > 1) header += ",";
        header += std::string("\"") + name + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" +
                  std::to_string(offset) + "," + std::to_string(offset + 8) + "]}";
        offset += 8;
    }
    header += "}";
    while (header.size() % 8) header += ' ';
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((header.size() >> (8 * i)) & 0xff));
    out << header << std::string(offset, '\x01');
    if (!out) std::abort();
}

struct Fixture {
    fs::path base, dir, index;
    Fixture() {
        const char* shm = "/dev/shm";
        std::string pattern = (fs::is_directory(shm) ? std::string(shm) : fs::temp_directory_path().string()) +
                              "/weft-fuzz-index-XXXXXX";
        if (!::mkdtemp(pattern.data())) std::abort();
        base = pattern;
        dir = base / "checkpoint";
        fs::create_directory(dir);
        index = dir / "model.safetensors.index.json";
        write_shard(dir / "model-00001-of-00002.safetensors", {"a", "b"});
        write_shard(dir / "model-00002-of-00002.safetensors", {"c"});
        write_shard(base / "outside.safetensors", {"secret"});
        std::atexit([] { std::error_code ec; fs::remove_all(instance().base, ec); });
    }
    static Fixture& instance() {
        static Fixture f;
        return f;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const Fixture& fx = Fixture::instance();
    {
        std::ofstream out(fx.index, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
        if (!out) std::abort();
    }
    try {
        const weft::safetensors::Checkpoint ckpt(fx.dir.string());
        const fs::path dir = fs::canonical(fx.dir);
        for (const auto& file : ckpt.files()) {
            const fs::path p = fs::canonical(file->path());
            WEFT_FUZZ_CHECK(p.parent_path() == dir);
        }
        WEFT_FUZZ_CHECK(!ckpt.contains("secret"));
        for (const std::string& name : ckpt.names()) {
            const weft::Weight w = ckpt.weight(name);
            WEFT_FUZZ_CHECK(w.name == name && w.shape.numel() == 2);
        }
    } catch (const weft::Error&) {
    }
    return 0;
}
