// safetensors reading: round trips of files written here, zero-copy mapping, sharded checkpoints,
// and one hand-made corrupt file for each way a file can lie (after llama.cpp's test-gguf.cpp).
#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <weft/io/safetensors.hpp>

namespace test_safetensors {

namespace {

namespace fs = std::filesystem;
namespace st = weft::safetensors;

using weft_test::TempDir;

std::string u64le(std::uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xFF);
    return s;
}

// A file exactly as given: length field, header text, data.
std::string raw(const std::string& header, const std::string& data = {}) { return u64le(header.size()) + header + data; }

template <class T>
std::string bytes_of(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

struct Spec {
    std::string name, dtype;
    std::vector<long long> shape;
    std::string bytes;
};

// A well-formed file as the safetensors library writes it: tensors back to back in the given
// order, header padded with spaces to a multiple of 8.
std::string make_file(const std::vector<Spec>& specs, const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    if (!metadata.empty()) h["__metadata__"] = metadata;
    std::string data;
    for (const Spec& s : specs) {
        h[s.name] = {{"dtype", s.dtype}, {"shape", s.shape}, {"data_offsets", {data.size(), data.size() + s.bytes.size()}}};
        data += s.bytes;
    }
    std::string header = h.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    return raw(header, data);
}

// The message of the weft::Error that f throws, or a marker if it throws none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const weft::Error& e) {
        return e.what();
    }
    return "<no error thrown>";
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// Writes `contents`, opens it, and checks the error names the file and contains `needle`.
void check_rejected(const TempDir& dir, const std::string& contents, const std::string& needle, const st::Limits& limits = {}) {
    const std::string path = dir.write("bad.safetensors", contents);
    const std::string message = error_of([&] { st::File f(path, limits); });
    INFO("expected: ", needle);
    CHECK_MESSAGE(has(message, needle), message);
    CHECK_MESSAGE(has(message, path), message);
}

// A header with one F32 [2] tensor 'a' whose entry is `entry`, and `data_bytes` bytes of data.
std::string one_tensor(const std::string& entry, std::size_t data_bytes = 8) {
    return raw("{\"a\":" + entry + "}", std::string(data_bytes, '\0'));
}

const std::vector<float> f32_values = {1.5f, -2.0f, 3.25f, 0.0f, -0.5f, 1e30f};
const std::vector<std::uint16_t> f16_values = {weft::f16(1.0f).bits, weft::f16(-3.5f).bits, weft::f16(0.25f).bits,
                                               weft::f16(65504.0f).bits};
const std::vector<std::uint16_t> bf16_values = {weft::bf16(1.0f).bits, weft::bf16(-7.0f).bits, weft::bf16(3e38f).bits,
                                                weft::bf16(0.5f).bits};

std::vector<Spec> sample_specs() {
    return {
        {"model.embed_tokens.weight", "F32", {2, 3}, bytes_of(f32_values)},
        {"model.norm.weight", "F16", {4}, bytes_of(f16_values)},
        {"lm_head.weight", "BF16", {2, 1, 2}, bytes_of(bf16_values)},
        {"scalar", "F32", {}, bytes_of(std::vector<float>{42.0f})},
        {"empty", "BF16", {0, 5}, ""},
    };
}

}  // namespace

// ---- reading good files ---------------------------------------------------------------------

TEST_CASE("safetensors::File reads back every tensor, dtype, shape and metadata that was written") {
    TempDir dir("st_roundtrip");
    const std::string path = dir.write("model.safetensors", make_file(sample_specs(), {{"format", "pt"}, {"note", "hi"}}));
    const st::File f(path);

    CHECK(f.path() == path);
    CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"note", "hi"}});
    REQUIRE(f.tensors().size() == 5);
    // In the order their data lies in the file (the empty tensor sits at the end).
    CHECK(f.tensors()[0].name == "model.embed_tokens.weight");
    CHECK(f.tensors()[1].name == "model.norm.weight");
    CHECK(f.tensors()[2].name == "lm_head.weight");
    CHECK(f.tensors()[3].name == "scalar");
    CHECK(f.tensors()[4].name == "empty");

    const st::TensorInfo* e = f.find("model.embed_tokens.weight");
    REQUIRE(e != nullptr);
    CHECK(e->dtype == weft::DType::f32);
    CHECK(e->shape == weft::Shape{2, 3});
    CHECK(e->end - e->begin == 24);
    CHECK(e->end <= f.bytes().size());
    CHECK(f.find("nope") == nullptr);

    const weft::Weight w = f.weight("model.embed_tokens.weight");
    CHECK(w.name == "model.embed_tokens.weight");
    CHECK(w.dtype == weft::DType::f32);
    const auto v = w.view<float>();
    CHECK(v(0, 0) == 1.5f);
    CHECK(v(0, 2) == 3.25f);
    CHECK(v(1, 2) == 1e30f);

    const auto h = f.weight("model.norm.weight").view<weft::f16>();
    CHECK(h.shape() == weft::Shape{4});
    CHECK(float(h(1)) == -3.5f);
    CHECK(float(h(3)) == 65504.0f);

    const auto b = f.weight("lm_head.weight").view<weft::bf16>();
    CHECK(b.shape() == weft::Shape{2, 1, 2});
    CHECK(float(b(0, 0, 1)) == -7.0f);
    CHECK(float(b(1, 0, 1)) == 0.5f);

    const weft::Weight s = f.weight("scalar");
    CHECK(s.shape.rank() == 0);
    CHECK(s.view<float>()() == 42.0f);

    const weft::Weight z = f.weight("empty");
    CHECK(z.shape == weft::Shape{0, 5});
    CHECK(z.dtype == weft::DType::bf16);
}

TEST_CASE("safetensors::File hands out weights that point into the mapping, with no copy") {
    TempDir dir("st_zero_copy");
    const st::File f(dir.write("m.safetensors", make_file(sample_specs())));
    const std::byte* lo = f.bytes().data();
    const std::byte* hi = lo + f.bytes().size();
    for (const st::TensorInfo& t : f.tensors()) {
        const weft::Weight w = f.weight(t.name);
        CAPTURE(t.name);
        CHECK(w.data == lo + t.begin);
        CHECK(w.data >= lo);
        CHECK(w.data <= hi);
        CHECK(reinterpret_cast<std::uintptr_t>(w.data) % weft::dtype_size(t.dtype) == 0);
    }
}

TEST_CASE("safetensors::File copies a tensor the writer left misaligned, so kernels may assume alignment") {
    TempDir dir("st_misaligned");
    // The data area starts 8-aligned; one F16 element puts the F32 tensor after it 2 bytes off.
    const std::vector<float> values = {1.0f, 2.0f, 3.0f};
    const std::string file = make_file({{"h", "F16", {1}, bytes_of(std::vector<std::uint16_t>{weft::f16(2.0f).bits})},
                                        {"f", "F32", {3}, bytes_of(values)}});
    const st::File f(dir.write("m.safetensors", file));
    CHECK(f.find("f")->begin % 4 == 2);
    const weft::Weight w = f.weight("f");
    CHECK(reinterpret_cast<std::uintptr_t>(w.data) % 4 == 0);
    CHECK(w.data != f.bytes().data() + f.find("f")->begin);              // copied
    CHECK(f.weight("h").data == f.bytes().data() + f.find("h")->begin);  // in place
    const auto v = w.view<float>();
    CHECK(v(0) == 1.0f);
    CHECK(v(2) == 3.0f);
    CHECK(float(f.weight("h").view<weft::f16>()(0)) == 2.0f);
}

TEST_CASE("safetensors::File accepts a file with no tensors and null metadata") {
    TempDir dir("st_empty");
    CHECK(st::File(dir.write("a.safetensors", raw("{}"))).tensors().empty());
    CHECK(st::File(dir.write("b.safetensors", raw("{\"__metadata__\":null}   "))).metadata().empty());
}

TEST_CASE("safetensors::File::weight names the file and the tensor when the tensor is absent") {
    TempDir dir("st_absent");
    const std::string path = dir.write("m.safetensors", make_file(sample_specs()));
    const st::File f(path);
    CHECK(error_of([&] { (void)f.weight("model.layers.0.mlp.up_proj.weight"); }) ==
          "safetensors: no tensor 'model.layers.0.mlp.up_proj.weight' in " + path);
}

// ---- each way a file can lie ----------------------------------------------------------------

TEST_CASE("safetensors::File refuses a file too short to hold the header length") {
    TempDir dir("st_short");
    check_rejected(dir, "", "the file has 0 bytes, too short for the 8-byte header length");
    check_rejected(dir, std::string(7, '\0'), "the file has 7 bytes, too short");
}

TEST_CASE("safetensors::File refuses a header length above the limit or past the end of the file") {
    TempDir dir("st_length");
    check_rejected(dir, u64le(std::uint64_t(1) << 63) + "{}", "header length 9223372036854775808 exceeds the limit of 100000000 bytes");
    check_rejected(dir, u64le(~std::uint64_t(0)) + "{}", "exceeds the limit");
    check_rejected(dir, make_file(sample_specs()), "exceeds the limit of 16 bytes", st::Limits{16});
    check_rejected(dir, u64le(100) + "{}" + std::string(20, ' '), "header length 100 runs past the end of the file (22 bytes follow");
}

TEST_CASE("safetensors::File refuses a header that is not a JSON object") {
    TempDir dir("st_json");
    check_rejected(dir, raw("{not json"), "the 9-byte header is not valid JSON");
    check_rejected(dir, raw(""), "header is not valid JSON");
    check_rejected(dir, raw("{}garbage"), "not valid JSON");
    check_rejected(dir, raw(std::string("{}\0\0\0\0\0\0", 8)), "is not valid JSON: it holds a NUL byte at offset 2");  // NUL padding
    check_rejected(dir, raw(std::string("{}\0{\"hidden\":1}", 15)), "NUL byte at offset 2");
    check_rejected(dir, raw("{\"a\":\"\xff\xfe\"}"), "not valid JSON");         // not UTF-8
    check_rejected(dir, raw("[1, 2]"), "the header is a JSON array, expected an object");
    check_rejected(dir, raw("42      "), "the header is a JSON number, expected an object");
}

TEST_CASE("safetensors::File refuses an entry that is not an object or lacks a field") {
    TempDir dir("st_fields");
    check_rejected(dir, one_tensor("5"), "tensor 'a': the entry is 5, expected an object with dtype, shape and data_offsets");
    check_rejected(dir, one_tensor("[\"F32\"]"), "tensor 'a': the entry is [\"F32\"], expected an object");
    check_rejected(dir, one_tensor(R"({"shape":[2],"data_offsets":[0,8]})"), "tensor 'a': the entry has no 'dtype'");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","data_offsets":[0,8]})"), "tensor 'a': the entry has no 'shape'");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2]})"), "tensor 'a': the entry has no 'data_offsets'");
}

TEST_CASE("safetensors::File refuses fields of the wrong JSON type") {
    TempDir dir("st_types");
    check_rejected(dir, one_tensor(R"({"dtype":32,"shape":[2],"data_offsets":[0,8]})"), "tensor 'a': dtype is 32, expected a string");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":"abc","data_offsets":[0,8]})"),
                   "tensor 'a': shape is \"abc\", expected an array of sizes");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":["2"],"data_offsets":[0,8]})"),
                   "size \"2\" on axis 0 of shape [\"2\"] is not a non-negative integer");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":"0,8"})"),
                   "tensor 'a': data_offsets is \"0,8\", expected [begin, end]");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0]})"), "data_offsets is [0], expected [begin, end]");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8,8]})"), "expected [begin, end]");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,"8"]})"),
                   "data_offsets [0,\"8\"] are not two non-negative integers");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[-8,0]})"), "are not two non-negative integers");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[0,8.0]})"), "are not two non-negative integers");
}

TEST_CASE("safetensors::File refuses negative, fractional and oversized dimensions") {
    TempDir dir("st_dims");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]})"),
                   "tensor 'a': size -1 on axis 1 of shape [2,-1] is not a non-negative integer");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,8]})"), "size 1.5 on axis 0");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]})"),
                   "is not a non-negative integer");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]})"),
                   "size 9223372036854775808 on axis 0 does not fit a 64-bit signed index");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]})"),
                   "tensor 'a': shape has 9 axes; weft tensors have at most 8");
}

TEST_CASE("safetensors::File refuses shapes whose element or byte count overflows 64 bits") {
    TempDir dir("st_overflow");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]})"),
                   "shape [4294967296, 4294967296]... has more elements than 64 bits can count");
    // 2^62 * 2 elements fit; times 4 bytes they do not. A wrapped product would be 0 here.
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[4611686018427387904,2],"data_offsets":[0,0]})", 0),
                   "shape [4611686018427387904, 2] of F32 needs more bytes than 64 bits can count");
}

TEST_CASE("safetensors::File refuses dtypes weft does not read, naming tensor and dtype") {
    TempDir dir("st_dtype");
    for (const char* dtype : {"I8", "U8", "I32", "I64", "F64", "BOOL", "F8_E4M3", "F8_E5M2", "f32", "Q4_0", ""}) {
        CAPTURE(dtype);
        check_rejected(dir, one_tensor(std::string(R"({"dtype":")") + dtype + R"(","shape":[2],"data_offsets":[0,8]})"),
                       std::string("tensor 'a': dtype \"") + dtype + "\" is not supported; weft reads F32, F16 and BF16");
    }
}

TEST_CASE("safetensors::File refuses data_offsets that are reversed, out of bounds or the wrong size") {
    TempDir dir("st_offsets");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[0],"data_offsets":[8,4]})"),
                   "tensor 'a': data_offsets [8, 4] end before they begin");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[100],"data_offsets":[0,400]})", 16),
                   "tensor 'a': ends at byte 400 of the data area, but the area has 16 bytes");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]})"),
                   "ends at byte 18446744073709551615 of the data area");
    check_rejected(dir, one_tensor(R"({"dtype":"F32","shape":[2,2],"data_offsets":[0,12]})", 12),
                   "tensor 'a': data_offsets [0, 12] hold 12 bytes, but F32 with shape [2, 2] needs 16");
    check_rejected(dir, one_tensor(R"({"dtype":"BF16","shape":[2],"data_offsets":[0,8]})"),
                   "hold 8 bytes, but BF16 with shape [2] needs 4");
}

TEST_CASE("safetensors::File refuses tensors that leave holes, overlap or stop short of the end") {
    TempDir dir("st_tiling");
    const std::string f32x2 = R"({"dtype":"F32","shape":[2],"data_offsets":)";
    check_rejected(dir, raw("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[12,20]}}", std::string(20, '\0')),
                   "bytes [8, 12) of the data area belong to no tensor (a hole before tensor 'b')");
    check_rejected(dir, raw("{\"a\":" + f32x2 + "[4,12]}}", std::string(12, '\0')),
                   "bytes [0, 4) of the data area belong to no tensor (a hole before tensor 'a')");
    check_rejected(dir, raw("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[4,12]}}", std::string(12, '\0')),
                   "tensor 'b' starts at byte 4 of the data area, inside tensor 'a' which ends at byte 8 (overlap)");
    check_rejected(dir, raw("{\"a\":" + f32x2 + "[0,8]},\"b\":" + f32x2 + "[0,8]}}", std::string(8, '\0')),
                   "(overlap)");  // two names for the same bytes
    check_rejected(dir, raw("{\"a\":" + f32x2 + "[0,8]}}", std::string(12, '\0')),
                   "the tensors end at byte 8 of the data area, but the area has 12 bytes (4 trailing bytes belong to no tensor)");
    check_rejected(dir, raw("{}", "x"), "the tensors end at byte 0 of the data area, but the area has 1 bytes");
    check_rejected(dir, make_file(sample_specs()) + "!", "(1 trailing bytes belong to no tensor)");
}

TEST_CASE("safetensors::File refuses __metadata__ that is not an object of strings") {
    TempDir dir("st_metadata");
    check_rejected(dir, raw(R"({"__metadata__":["format","pt"]})"), "__metadata__ is a JSON array, expected an object of strings");
    check_rejected(dir, raw(R"({"__metadata__":"pt"})"), "__metadata__ is a JSON string, expected an object of strings");
    check_rejected(dir, raw(R"({"__metadata__":{"format":"pt","step":1000}})"), "__metadata__ 'step' is 1000, expected a string");
    check_rejected(dir, raw(R"({"__metadata__":{"nested":{"a":"b"}}})"), "__metadata__ 'nested' is {\"a\":\"b\"}, expected a string");
}

TEST_CASE("safetensors::File refuses duplicate names, which JSON parsers would silently drop") {
    TempDir dir("st_duplicates");
    const std::string entry = R"({"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    check_rejected(dir, raw("{\"a\":" + entry + ",\"a\":" + entry + "}", std::string(8, '\0')), "the header names 'a' twice");
    check_rejected(dir, raw(R"({"a":{"dtype":"F16","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0')),
                   "an object in the header has the key 'dtype' twice");
    check_rejected(dir, raw(R"({"__metadata__":{"k":"1","k":"2"}})"), "has the key 'k' twice");
    check_rejected(dir, raw(R"({"__metadata__":{},"__metadata__":{}})"), "the header names '__metadata__' twice");
}

TEST_CASE("safetensors::File refuses a file truncated at any byte, naming the section it stops in") {
    TempDir dir("st_truncated");
    const std::string full = make_file(sample_specs(), {{"format", "pt"}});
    const std::uint64_t header_len = st::detail::read_u64_le(reinterpret_cast<const std::byte*>(full.data()));
    const std::size_t data_start = 8 + static_cast<std::size_t>(header_len);

    // The section boundaries, with the message each truncation must give.
    check_rejected(dir, full.substr(0, 0), "too short for the 8-byte header length");
    check_rejected(dir, full.substr(0, 7), "too short for the 8-byte header length");
    check_rejected(dir, full.substr(0, 8), "runs past the end of the file (0 bytes follow");
    check_rejected(dir, full.substr(0, data_start - 1), "runs past the end of the file");
    // (Entries are checked in key order; 'empty' sits at the end of the data, byte 44.)
    check_rejected(dir, full.substr(0, data_start), "tensor 'empty': ends at byte 44 of the data area, but the area has 0 bytes");
    check_rejected(dir, full.substr(0, data_start + 24), "ends at byte 44 of the data area, but the area has 24 bytes");
    check_rejected(dir, full.substr(0, full.size() - 1), "ends at byte 44 of the data area, but the area has 43 bytes");

    // And every other length: always an error, never a crash or a silent success.
    int failures = 0;
    for (std::size_t n = 0; n < full.size(); ++n) {
        const std::string path = dir.write("cut.safetensors", full.substr(0, n));
        const std::string message = error_of([&] { st::File f(path); });
        if (!has(message, "safetensors: " + path + ": ")) {
            ++failures;
            INFO("truncated to ", n, " bytes: ", message);
            CHECK(false);
        }
    }
    CHECK(failures == 0);
    CHECK(st::File(dir.write("full.safetensors", full)).tensors().size() == 5);
}

TEST_CASE("safetensors::File reports a missing file by name") {
    CHECK(has(error_of([] { st::File f("no_such_dir_weft/model.safetensors"); }), "no_such_dir_weft/model.safetensors"));
}

// ---- checkpoints ----------------------------------------------------------------------------

namespace {

// Two shards and their index, as transformers' save_pretrained writes them.
void write_sharded(const TempDir& dir, const std::string& weight_map_json) {
    dir.write("model-00001-of-00002.safetensors",
              make_file({{"model.embed_tokens.weight", "F32", {2, 3}, bytes_of(f32_values)},
                         {"model.norm.weight", "F16", {4}, bytes_of(f16_values)}},
                        {{"format", "pt"}}));
    dir.write("model-00002-of-00002.safetensors", make_file({{"lm_head.weight", "BF16", {2, 1, 2}, bytes_of(bf16_values)}}));
    dir.write("model.safetensors.index.json", R"({"metadata": {"total_size": 38}, "weight_map": )" + weight_map_json + "}");
}

const char* good_weight_map = R"({
    "lm_head.weight": "model-00002-of-00002.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.norm.weight": "model-00001-of-00002.safetensors"})";

void check_checkpoint_rejected(const std::string& path, const std::string& needle) {
    const std::string message = error_of([&] { st::Checkpoint c(path); });
    INFO("expected: ", needle);
    CHECK_MESSAGE(has(message, needle), message);
}

}  // namespace

TEST_CASE("safetensors::Checkpoint reads a sharded model through its index, mapping each shard once") {
    TempDir dir("ckpt_sharded");
    write_sharded(dir, good_weight_map);
    const st::Checkpoint c(dir.path.string());

    CHECK(c.files().size() == 2);
    CHECK(c.names() == std::vector<std::string>{"lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"});
    CHECK(c.contains("model.norm.weight"));
    CHECK_FALSE(c.contains("model.layers.0.self_attn.q_proj.weight"));
    CHECK(c.mapped_bytes() == fs::file_size(dir.path / "model-00001-of-00002.safetensors") +
                                  fs::file_size(dir.path / "model-00002-of-00002.safetensors"));

    CHECK(c.weight("model.embed_tokens.weight").view<float>()(1, 2) == 1e30f);
    CHECK(float(c.weight("lm_head.weight").view<weft::bf16>()(0, 0, 1)) == -7.0f);
    // Zero-copy: the weight lies inside its shard's mapping.
    for (const std::string& name : c.names()) {
        const weft::Weight w = c.weight(name);
        bool inside = false;
        for (const auto& f : c.files())
            inside = inside || (w.data >= f->bytes().data() && w.data < f->bytes().data() + f->bytes().size());
        CHECK_MESSAGE(inside, name);
    }
    CHECK(error_of([&] { (void)c.weight("model.layers.0.mlp.gate_proj.weight"); }) ==
          "safetensors: no tensor 'model.layers.0.mlp.gate_proj.weight' in " + dir.path.string());

    // The index file itself may be given instead of its directory.
    CHECK(st::Checkpoint((dir.path / "model.safetensors.index.json").string()).names().size() == 3);
}

TEST_CASE("safetensors::Checkpoint reads a single-file model from its directory or its path") {
    TempDir dir("ckpt_single");
    const std::string path = dir.write("model.safetensors", make_file(sample_specs()));
    const st::Checkpoint by_dir(dir.path.string()), by_file(path);
    CHECK(by_dir.names().size() == 5);
    CHECK(by_file.names() == by_dir.names());
    CHECK(by_dir.mapped_bytes() == fs::file_size(path));
    CHECK(by_file.weight("scalar").view<float>()() == 42.0f);
}

TEST_CASE("safetensors::Checkpoint refuses an index that lies") {
    TempDir dir("ckpt_bad_index");
    const std::string d = dir.path.string();
    SUBCASE("a directory with no model files") {
        check_checkpoint_rejected(d, "holds neither model.safetensors nor model.safetensors.index.json");
    }
    SUBCASE("index not JSON") {
        dir.write("model.safetensors.index.json", "{\"weight_map\": ");
        check_checkpoint_rejected(d, "model.safetensors.index.json is not valid JSON");
    }
    SUBCASE("index not an object") {
        dir.write("model.safetensors.index.json", "[]");
        check_checkpoint_rejected(d, "is a JSON array, expected an object");
    }
    SUBCASE("no weight_map") {
        dir.write("model.safetensors.index.json", R"({"metadata": {}})");
        check_checkpoint_rejected(d, "has no 'weight_map'");
    }
    SUBCASE("weight_map not an object") {
        write_sharded(dir, R"(["model-00001-of-00002.safetensors"])");
        check_checkpoint_rejected(d, "weight_map is a JSON array, expected an object of name → shard");
    }
    SUBCASE("empty weight_map") {
        write_sharded(dir, "{}");
        check_checkpoint_rejected(d, "weight_map lists no tensors");
    }
    SUBCASE("shard name not a string") {
        write_sharded(dir, R"({"lm_head.weight": 2})");
        check_checkpoint_rejected(d, "weight_map['lm_head.weight'] is 2, expected a shard file name");
    }
    SUBCASE("shard names that leave the directory") {
        for (const char* shard : {"../model-00002-of-00002.safetensors", "sub/model.safetensors", "/etc/passwd", "..", ".", "",
                                  "a\\\\b.safetensors"}) {
            CAPTURE(shard);
            write_sharded(dir, std::string(R"({"lm_head.weight": ")") + shard + "\"}");
            check_checkpoint_rejected(d, "' for tensor 'lm_head.weight' is not a plain file name");
        }
    }
    SUBCASE("a missing shard file") {
        write_sharded(dir, R"({"lm_head.weight": "model-00003-of-00003.safetensors"})");
        check_checkpoint_rejected(d, "puts tensor 'lm_head.weight' in shard 'model-00003-of-00003.safetensors', but " +
                                         (dir.path / "model-00003-of-00003.safetensors").string() + " does not exist");
    }
    SUBCASE("a tensor absent from its shard") {
        write_sharded(dir, R"({"lm_head.weight": "model-00001-of-00002.safetensors"})");
        check_checkpoint_rejected(d, "puts tensor 'lm_head.weight' in shard 'model-00001-of-00002.safetensors', but that shard has no such tensor");
    }
    SUBCASE("a tensor listed twice") {
        write_sharded(dir, R"({"lm_head.weight": "model-00002-of-00002.safetensors", "lm_head.weight": "model-00001-of-00002.safetensors"})");
        check_checkpoint_rejected(d, "has the key 'lm_head.weight' twice");
    }
    SUBCASE("a corrupt shard") {
        write_sharded(dir, good_weight_map);
        dir.write("model-00002-of-00002.safetensors", "short");
        check_checkpoint_rejected(d, "model-00002-of-00002.safetensors: the file has 5 bytes, too short");
    }
}

}  // namespace test_safetensors
