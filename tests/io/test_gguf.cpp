// GGUF reading and writing: round trips through gguf::Writer, the files llama.cpp's gguf-py wrote
// (tests/golden/make_gguf_reference.py), and one hand-made corrupt file for each way a file can lie
// (after llama.cpp's test-gguf.cpp), built byte by byte here so they do not depend on the Writer.
#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <weft/io/gguf.hpp>

namespace test_gguf {

namespace {

namespace fs = std::filesystem;
namespace gguf = weft::gguf;
using gguf::GgmlType;
using gguf::ValueType;
using weft::Shape;
using weft_test::TempDir;

// ---- a byte builder, independent of the code under test ------------------------------------

std::string u8(std::uint8_t v) { return std::string(1, static_cast<char>(v)); }
std::string u32(std::uint32_t v) {
    std::string s(4, '\0');
    for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
}
std::string u64(std::uint64_t v) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFF);
    return s;
}
std::string f32(float v) { return u32(std::bit_cast<std::uint32_t>(v)); }
std::string str(const std::string& s) { return u64(s.size()) + s; }
// A metadata entry: key, value type, payload.
std::string kv(const std::string& key, std::uint32_t type, const std::string& payload) { return str(key) + u32(type) + payload; }
std::string kv_u32(const std::string& key, std::uint32_t v) { return kv(key, 4, u32(v)); }
// A tensor info; dims in GGUF order (dims[0] contiguous).
std::string info(const std::string& name, const std::vector<std::uint64_t>& dims, std::uint32_t type, std::uint64_t offset) {
    std::string s = str(name) + u32(static_cast<std::uint32_t>(dims.size()));
    for (std::uint64_t d : dims) s += u64(d);
    return s + u32(type) + u64(offset);
}
std::string header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    return "GGUF" + u32(version) + u64(n_tensors) + u64(n_kv);
}
// A whole file: header, entries, infos, zero padding to `alignment`, data.
std::string file(const std::vector<std::string>& kvs, const std::vector<std::string>& infos, const std::string& data = {},
                 std::size_t alignment = 32, std::uint32_t version = 3) {
    std::string s = header(infos.size(), kvs.size(), version);
    for (const auto& k : kvs) s += k;
    for (const auto& t : infos) s += t;
    s.append((alignment - s.size() % alignment) % alignment, '\0');
    return s + data;
}
// One F32 tensor 't' of 4 values at offset 0, after the given entries.
std::string one_tensor_file(const std::vector<std::string>& kvs = {}) {
    return file(kvs, {info("t", {4}, 0, 0)}, f32(1) + f32(2) + f32(3) + f32(4));
}

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
void check_rejected(const TempDir& dir, const std::string& contents, const std::string& needle, const gguf::Limits& limits = {}) {
    const std::string path = dir.write("bad.gguf", contents);
    const std::string message = error_of([&] { gguf::File f(path, limits); });
    INFO("expected: ", needle);
    CHECK_MESSAGE(has(message, needle), message);
    CHECK_MESSAGE(has(message, "gguf: " + path + ": "), message);
}

std::string reference(const std::string& name) { return std::string(WEFT_SOURCE_DIR) + "/tests/data/gguf/" + name; }

std::string slurp(const std::string& path) {
    weft::MappedFile m(path);
    return std::string(reinterpret_cast<const char*>(m.data()), m.size());
}

template <class T>
std::span<const std::byte> bytes_of(const std::vector<T>& v) { return std::as_bytes(std::span(v)); }

// A Writer holding one of everything: every value type, arrays of each, nested arrays, and
// tensors of every type weft computes with.
struct Sample {
    std::vector<float> f32s = {1.5f, -2.0f, 3.25f, 0.0f, -0.5f, 1e30f};
    std::vector<std::uint16_t> f16s = {weft::f16(1.0f).bits, weft::f16(-3.5f).bits, weft::f16(0.25f).bits, weft::f16(65504.0f).bits};
    std::vector<std::uint16_t> bf16s = {weft::bf16(1.0f).bits, weft::bf16(-7.0f).bits};
    std::vector<std::int8_t> i8s = {-128, 0, 127};
    std::vector<std::int32_t> i32s = {7, -7};
    std::vector<double> f64s = {0.1};
    std::vector<float> scalar = {42.0f};  // the Writer keeps spans, not copies: data lives here
    std::vector<std::byte> q8_0 = std::vector<std::byte>(2 * 34, std::byte{3}), q4_0 = std::vector<std::byte>(18, std::byte{4}),
                           q4_k = std::vector<std::byte>(144, std::byte{5}), q5_k = std::vector<std::byte>(176, std::byte{6}),
                           q6_k = std::vector<std::byte>(2 * 210, std::byte{7});
    const std::string not_utf8 = std::string("\xff\xfe\0x", 4);

    gguf::Writer writer() const {
        gguf::Writer w;
        w.add("general.architecture", "test");
        w.add("v.u8", std::uint8_t(200));
        w.add("v.i8", std::int8_t(-100));
        w.add("v.u16", std::uint16_t(60000));
        w.add("v.i16", std::int16_t(-30000));
        w.add("v.u32", std::uint32_t(4000000000u));
        w.add("v.i32", std::int32_t(-2000000000));
        w.add("v.f32", 3.25f);
        w.add("v.bool", true);
        w.add("v.string", "h\xc3\xa9llo");
        w.add("v.not_utf8", std::string_view(not_utf8));
        w.add("v.u64", std::numeric_limits<std::uint64_t>::max());
        w.add("v.i64", std::numeric_limits<std::int64_t>::min());
        w.add("v.f64", 0.1);
        w.add_array("a.u8", std::vector<std::uint8_t>{0, 255});
        w.add_array("a.i16", std::vector<std::int16_t>{-5, 5});
        w.add_array("a.f32", std::vector<float>{1.5f, -2.5f});
        w.add_array("a.f64", std::vector<double>{0.25});
        w.add_array("a.bool", std::vector<bool>{true, false, true});
        w.add_array("a.u64", std::vector<std::uint64_t>{1, 2, 3});
        w.add_array("a.string", std::vector<std::string>{"a", "", not_utf8, "<|eot_id|>"});
        w.add_array("a.empty", std::vector<std::int32_t>{});
        w.add_array("a.nested", std::vector<gguf::EncodedValue>{gguf::encode_array(std::vector<std::int32_t>{1, 2, 3}),
                                                               gguf::encode_array(std::vector<std::int32_t>{}),
                                                               gguf::encode_array(std::vector<std::int32_t>{4})});
        w.add_array("a.nested_strings", std::vector<gguf::EncodedValue>{gguf::encode_array(std::vector<std::string>{"x", "yz"}),
                                                                       gguf::encode_array(std::vector<std::string>{"w"})});
        const auto inner = gguf::encode_array(std::vector<gguf::EncodedValue>{gguf::encode_array(std::vector<float>{9.5f})});
        w.add_array("a.nested3", std::vector<gguf::EncodedValue>{inner, inner});

        w.add_tensor("f32", weft::DType::f32, Shape{2, 3}, bytes_of(f32s));
        w.add_tensor("f16", weft::DType::f16, Shape{4}, bytes_of(f16s));
        w.add_tensor("bf16", weft::DType::bf16, Shape{1, 2, 1}, bytes_of(bf16s));
        w.add_tensor("i8", weft::DType::i8, Shape{3}, bytes_of(i8s));
        w.add_tensor("i32", weft::DType::i32, Shape{1, 1, 1, 2}, bytes_of(i32s));
        w.add_tensor("f64", weft::DType::f64, Shape{1}, bytes_of(f64s));
        w.add_tensor("q8_0", GgmlType::q8_0, Shape{2, 32}, std::span<const std::byte>(q8_0));
        w.add_tensor("q4_0", GgmlType::q4_0, Shape{32}, std::span<const std::byte>(q4_0));
        w.add_tensor("q4_k", GgmlType::q4_k, Shape{1, 256}, std::span<const std::byte>(q4_k));
        w.add_tensor("q5_k", GgmlType::q5_k, Shape{256}, std::span<const std::byte>(q5_k));
        w.add_tensor("q6_k", GgmlType::q6_k, Shape{2, 256}, std::span<const std::byte>(q6_k));
        w.add_tensor("scalar", weft::DType::f32, Shape{}, bytes_of(scalar));
        w.add_tensor("empty", weft::DType::f32, Shape{0, 5}, std::span<const std::byte>());
        return w;
    }
};

}  // namespace

// ---- the type table ------------------------------------------------------------------------

TEST_CASE("gguf's ggml type table has every current ggml type, and agrees with weft's quantized block layouts") {
    CHECK(std::size(gguf::ggml_types) == 34);
    for (const gguf::GgmlTypeInfo& t : gguf::ggml_types) {
        CAPTURE(t.name);
        CHECK(gguf::find_ggml_type(static_cast<std::uint32_t>(t.type)) == &t);
        if (const auto d = gguf::to_dtype(t.type)) {
            CHECK(gguf::to_ggml(*d) == t.type);
            CHECK(weft::block_size(*d) == t.block_size);
            CHECK(weft::block_bytes(*d) == t.block_bytes);
        }
    }
    for (std::uint32_t removed : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 42u, 1000u}) CHECK(gguf::find_ggml_type(removed) == nullptr);
    CHECK(std::string(gguf::ggml_type_name(GgmlType::iq2_xxs)) == "IQ2_XXS");
    CHECK(gguf::ggml_type_info(GgmlType::q2_k).block_bytes == 84);
    CHECK(gguf::ggml_type_info(GgmlType::tq1_0).block_bytes == 54);
    CHECK_FALSE(gguf::to_dtype(GgmlType::q4_1).has_value());
}

// ---- round trips ---------------------------------------------------------------------------

TEST_CASE("gguf::File reads back every metadata type the Writer wrote, nested arrays and odd bytes included") {
    TempDir dir("gguf_roundtrip");
    const Sample sample;
    const std::string path = dir.file("m.gguf");
    sample.writer().write(path);
    const gguf::File f(path);

    CHECK(f.version() == 3);
    CHECK(f.alignment() == 32);
    CHECK(f.data_offset() % 32 == 0);
    REQUIRE(f.metadata().size() == 25);
    CHECK(f.metadata()[0].key == "general.architecture");  // file order
    CHECK(f.metadata()[24].key == "a.nested3");

    CHECK(f.get<std::string>("general.architecture") == "test");
    CHECK(f.get<std::uint8_t>("v.u8") == 200);
    CHECK(f.get<std::int8_t>("v.i8") == -100);
    CHECK(f.get<std::uint16_t>("v.u16") == 60000);
    CHECK(f.get<std::int16_t>("v.i16") == -30000);
    CHECK(f.get<std::uint32_t>("v.u32") == 4000000000u);
    CHECK(f.get<std::int32_t>("v.i32") == -2000000000);
    CHECK(f.get<float>("v.f32") == 3.25f);
    CHECK(f.get<bool>("v.bool"));
    CHECK(f.get<std::string>("v.string") == "h\xc3\xa9llo");
    CHECK(f.get<std::string_view>("v.not_utf8") == sample.not_utf8);  // bytes kept as they are
    CHECK(f.get<std::uint64_t>("v.u64") == std::numeric_limits<std::uint64_t>::max());
    CHECK(f.get<std::int64_t>("v.i64") == std::numeric_limits<std::int64_t>::min());
    CHECK(f.get<double>("v.f64") == 0.1);
    const std::pair<const char*, ValueType> types[] = {
        {"v.u8", ValueType::u8},   {"v.i8", ValueType::i8},   {"v.u16", ValueType::u16},        {"v.i16", ValueType::i16},
        {"v.u32", ValueType::u32}, {"v.i32", ValueType::i32}, {"v.f32", ValueType::f32},        {"v.bool", ValueType::boolean},
        {"v.string", ValueType::string}, {"v.u64", ValueType::u64}, {"v.i64", ValueType::i64}, {"v.f64", ValueType::f64},
        {"a.u8", ValueType::array}};
    for (const auto& key_type : types) {
        const std::string key = key_type.first;
        CAPTURE(key);
        CHECK(f.value(key).type() == key_type.second);
    }

    CHECK(f.get_array<std::uint8_t>("a.u8").to_vector() == std::vector<std::uint8_t>{0, 255});
    CHECK(f.get_array<std::int16_t>("a.i16").to_vector() == std::vector<std::int16_t>{-5, 5});
    CHECK(f.get_array<float>("a.f32").to_vector() == std::vector<float>{1.5f, -2.5f});
    CHECK(f.get_array<double>("a.f64")[0] == 0.25);
    CHECK(f.get_array<bool>("a.bool").to_vector() == std::vector<bool>{true, false, true});
    CHECK(f.get_array<std::uint64_t>("a.u64").size() == 3);
    const auto strings = f.get_array<std::string_view>("a.string");
    CHECK(strings.to_vector() == std::vector<std::string_view>{"a", "", sample.not_utf8, "<|eot_id|>"});
    std::string joined;
    for (std::string_view s : strings) joined += std::string(s) + "|";
    CHECK(joined == "a||" + sample.not_utf8 + "|<|eot_id|>|");
    CHECK(f.get_array<std::int32_t>("a.empty").empty());
    CHECK(f.value("a.empty").element_type() == ValueType::i32);

    const gguf::Value& nested = f.value("a.nested");
    CHECK(nested.element_type() == ValueType::array);
    REQUIRE(nested.size() == 3);
    CHECK(nested.at(0).array<std::int32_t>().to_vector() == std::vector<std::int32_t>{1, 2, 3});
    CHECK(nested.at(1).size() == 0);
    CHECK(nested.at(2).array<std::int32_t>()[0] == 4);
    CHECK(nested.at(2).array<std::int32_t>().at(0) == 4);
    CHECK(nested.at(0).at(2).as<int>() == 3);
    const gguf::Value& ns = f.value("a.nested_strings");
    CHECK(ns.at(0).array<std::string_view>().to_vector() == std::vector<std::string_view>{"x", "yz"});
    CHECK(ns.at(1).at(0).as<std::string>() == "w");
    const gguf::Value& n3 = f.value("a.nested3");
    CHECK(n3.at(1).at(0).array<float>()[0] == 9.5f);
    CHECK(n3.at(1).at(0).at(0).as<double>() == 9.5);

    // A value read can be written again, byte for byte.
    const auto inner = gguf::encode_array(std::vector<gguf::EncodedValue>{gguf::encode_array(std::vector<float>{9.5f})});
    CHECK(gguf::encode(f.value("a.nested3")).bytes == gguf::encode_array(std::vector<gguf::EncodedValue>{inner, inner}).bytes);
    CHECK(gguf::encode(f.value("v.string")).bytes == gguf::encode("h\xc3\xa9llo").bytes);
}

TEST_CASE("gguf::File type rules: integers convert when the value fits; strings, bools and floats never pass as integers") {
    TempDir dir("gguf_types");
    gguf::Writer w;
    w.add("u32", std::uint32_t(7));
    w.add("big", std::uint32_t(4000000000u));
    w.add("neg", std::int32_t(-1));
    w.add("s", "12");
    w.add("b", true);
    w.add("f", 2.0f);
    w.add("d", 2.0);
    w.add_array("arr", std::vector<std::int32_t>{1, 2});
    const std::string path = dir.file("t.gguf");
    w.write(path);
    const gguf::File f(path);

    CHECK(f.get<std::int64_t>("u32") == 7);
    CHECK(f.get<std::uint8_t>("u32") == 7);  // fits
    CHECK(f.get<std::uint64_t>("big") == 4000000000u);
    CHECK(f.get<long long>("neg") == -1);
    CHECK(f.get<double>("f") == 2.0);  // f32 widens to double
    CHECK(f.get_or<std::int32_t>("absent", 5) == 5);
    CHECK(f.get_or<std::string>("absent", "x") == "x");
    CHECK_FALSE(f.get_optional<std::int32_t>("absent").has_value());
    CHECK(f.get_optional<std::int32_t>("u32") == 7);
    CHECK(f.has("u32"));
    CHECK_FALSE(f.has("U32"));
    CHECK(f.find("absent") == nullptr);

    const std::string prefix = "gguf: " + path + ": ";
    CHECK(error_of([&] { (void)f.get<std::int32_t>("big"); }) == prefix + "metadata 'big' holds 4000000000 (u32), which does not fit i32");
    CHECK(error_of([&] { (void)f.get<std::uint32_t>("neg"); }) == prefix + "metadata 'neg' holds -1 (i32), which does not fit u32");
    CHECK(error_of([&] { (void)f.get<std::int32_t>("s"); }) == prefix + "metadata 's' is string, expected i32");
    CHECK(error_of([&] { (void)f.get_or<std::int32_t>("s", 0); }) == prefix + "metadata 's' is string, expected i32");
    CHECK(error_of([&] { (void)f.get<std::uint32_t>("b"); }) == prefix + "metadata 'b' is bool, expected u32");
    CHECK(error_of([&] { (void)f.get<std::int64_t>("f"); }) == prefix + "metadata 'f' is f32, expected i64");
    CHECK(error_of([&] { (void)f.get<float>("d"); }) == prefix + "metadata 'd' is f64, expected f32");
    CHECK(error_of([&] { (void)f.get<bool>("u32"); }) == prefix + "metadata 'u32' is u32, expected bool");
    CHECK(error_of([&] { (void)f.get<std::string>("u32"); }) == prefix + "metadata 'u32' is u32, expected a string");
    CHECK(error_of([&] { (void)f.get<std::int32_t>("arr"); }) == prefix + "metadata 'arr' is an array, expected i32");
    CHECK(error_of([&] { (void)f.get_array<std::int64_t>("arr"); }) == prefix + "metadata 'arr' is an array of i32, not of i64");
    CHECK(error_of([&] { (void)f.get_array<std::int32_t>("u32"); }) == prefix + "metadata 'u32' is u32, not an array");
    CHECK(error_of([&] { (void)f.value("arr").at(2); }) == prefix + "metadata 'arr': index 2 is out of range for an array of 2");
    CHECK(error_of([&] { (void)f.value("arr").at(1).as<std::string>(); }) == prefix + "metadata 'arr[1]' is i32, expected a string");
    w.add_array("nested", std::vector<gguf::EncodedValue>{gguf::encode_array(std::vector<std::int32_t>{}), gguf::encode_array(std::vector<bool>{true})});
    const std::string path2 = dir.file("t2.gguf");
    w.write(path2);
    const gguf::File g(path2);
    CHECK(error_of([&] { (void)g.value("nested").at(1).at(0).as<int>(); }) ==
          "gguf: " + path2 + ": metadata 'nested[1][0]' is bool, expected i32");
    CHECK(error_of([&] { (void)f.get<std::int32_t>("llama.block_count"); }) == prefix + "no metadata key 'llama.block_count'");
}

TEST_CASE("gguf::File hands out weights in place in the mapping, in PyTorch order, for every type weft computes") {
    TempDir dir("gguf_weights");
    const Sample sample;
    const std::string path = dir.file("m.gguf");
    sample.writer().write(path);
    const gguf::File f(path);
    REQUIRE(f.tensors().size() == 13);

    const std::byte* lo = f.bytes().data();
    for (const gguf::TensorInfo& t : f.tensors()) {
        CAPTURE(t.name);
        CHECK(t.begin == f.data_offset() + t.offset);
        CHECK(t.offset % 32 == 0);
        const weft::Weight w = f.weight(t.name);
        CHECK(w.name == t.name);
        CHECK(w.data == lo + t.begin);  // zero-copy
        CHECK(w.shape == t.shape);
        CHECK(w.dtype == *gguf::to_dtype(t.type));
        CHECK(f.tensor_bytes(t.name).data() == w.data);
        CHECK(f.tensor_bytes(t.name).size() == t.nbytes());
    }
    const gguf::TensorInfo* m = f.find_tensor("f32");
    REQUIRE(m != nullptr);
    CHECK(m->dims == std::vector<std::uint64_t>{3, 2});  // GGUF order: the contiguous axis first
    CHECK(m->shape == Shape{2, 3});
    CHECK(m->numel == 6);
    CHECK(f.weight("f32").view<float>()(1, 2) == 1e30f);
    CHECK(float(f.weight("f16").view<weft::f16>()(3)) == 65504.0f);
    CHECK(float(f.weight("bf16").view<weft::bf16>()(0, 1, 0)) == -7.0f);
    CHECK(f.weight("i8").view<std::int8_t>()(0) == -128);
    CHECK(f.weight("i32").view<std::int32_t>()(0, 0, 0, 1) == -7);
    CHECK(f.weight("f64").view<double>()(0) == 0.1);
    CHECK(f.weight("q6_k").dtype == weft::DType::q6_k);
    CHECK(f.weight("q6_k").shape == Shape{2, 256});
    CHECK(f.find_tensor("q8_0")->nbytes() == 68);
    CHECK(f.weight("scalar").shape.rank() == 0);
    CHECK(f.weight("scalar").view<float>()() == 42.0f);
    CHECK(f.weight("empty").shape == Shape{0, 5});
    CHECK(f.find_tensor("nope") == nullptr);
    CHECK(error_of([&] { (void)f.weight("nope"); }) == "gguf: no tensor 'nope' in " + path);
}

TEST_CASE("gguf::File validates tensors of every ggml type, and only weight() refuses the types weft cannot compute") {
    TempDir dir("gguf_all_types");
    gguf::Writer w;
    std::vector<std::vector<std::byte>> keep;
    for (const gguf::GgmlTypeInfo& t : gguf::ggml_types) {
        keep.emplace_back(2 * 3 * t.block_bytes, std::byte{0x11});
        w.add_tensor(std::string("t.") + t.name, t.type, Shape{3, 2 * static_cast<weft::Index>(t.block_size)}, std::span<const std::byte>(keep.back()));
    }
    const std::string path = dir.file("all.gguf");
    w.write(path);
    const gguf::File f(path);
    REQUIRE(f.tensors().size() == std::size(gguf::ggml_types));
    for (const gguf::GgmlTypeInfo& t : gguf::ggml_types) {
        const std::string name = std::string("t.") + t.name;
        CAPTURE(name);
        const gguf::TensorInfo* info = f.find_tensor(name);
        REQUIRE(info != nullptr);
        CHECK(info->type == t.type);
        CHECK(f.tensor_bytes(name).size() == 6 * t.block_bytes);
        if (gguf::to_dtype(t.type)) CHECK(f.weight(name).shape == Shape{3, 2 * static_cast<weft::Index>(t.block_size)});
        else CHECK(has(error_of([&] { (void)f.weight(name); }), "tensor '" + name + "' is " + t.name + ", which weft cannot compute with"));
    }
}

TEST_CASE("gguf::File copies a tensor a small alignment left misaligned, and uses aligned ones in place") {
    TempDir dir("gguf_align1");
    gguf::Writer w;
    w.set_alignment(1);
    const std::vector<std::int8_t> one = {5};
    const std::vector<float> values = {1.0f, 2.0f, 3.0f};
    w.add_tensor("i8", weft::DType::i8, Shape{1}, bytes_of(one));
    w.add_tensor("f", weft::DType::f32, Shape{3}, bytes_of(values));
    const std::string path = dir.file("a1.gguf");
    w.write(path);
    const gguf::File f(path);
    CHECK(f.alignment() == 1);
    CHECK(f.get<std::uint32_t>("general.alignment") == 1);
    CHECK(f.find_tensor("f")->offset == 1);
    const weft::Weight x = f.weight("f");
    CHECK(reinterpret_cast<std::uintptr_t>(x.data) % 4 == 0);
    CHECK(x.data != f.bytes().data() + f.find_tensor("f")->begin);  // copied
    CHECK(x.view<float>()(2) == 3.0f);
    CHECK(f.weight("i8").data == f.bytes().data() + f.find_tensor("i8")->begin);
}

TEST_CASE("gguf::Writer streams tensor data from sources and pads each tensor to the alignment") {
    TempDir dir("gguf_stream");
    gguf::Writer w;
    w.set_alignment(64);
    w.add_tensor("big", GgmlType::f32, Shape{1000, 3}, [](const gguf::Writer::Sink& sink) {
        for (int r = 0; r < 1000; ++r) {  // row by row, as a converter would
            const float row[3] = {float(r), float(-r), 0.5f};
            sink(std::as_bytes(std::span(row)));
        }
    });
    w.add_tensor("small", GgmlType::f16, Shape{1}, [](const gguf::Writer::Sink& sink) {
        const std::uint16_t h = weft::f16(2.0f).bits;
        sink(std::as_bytes(std::span(&h, 1)));
    });
    CHECK(w.alignment() == 64);
    CHECK(w.tensor_count() == 2);
    const std::string path = dir.file("s.gguf");
    w.write(path);
    const gguf::File f(path);
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    CHECK(f.find_tensor("small")->offset == 12032);  // 12000 rounded up to 64
    CHECK(f.bytes().size() == f.data_offset() + 12032 + 64);  // the last tensor is padded too, as gguf-py does
    CHECK(f.weight("big").view<float>()(999, 1) == -999.0f);
    CHECK(float(f.weight("small").view<weft::f16>()(0)) == 2.0f);

    // Writing to a stream gives the same bytes.
    std::ostringstream out;
    w.write(out);
    CHECK(out.str() == slurp(path));
}

TEST_CASE("gguf::Writer refuses what would make an invalid file, and leaves no file behind") {
    TempDir dir("gguf_writer_errors");
    gguf::Writer w;
    w.add("k", 1);
    CHECK(error_of([&] { w.add("k", 2); }) == "gguf::Writer: metadata key 'k' was already added");
    CHECK(error_of([&] { w.add("general.alignment", 32); }) == "gguf::Writer: general.alignment must be a u32, got i32");
    CHECK(error_of([&] { w.set_alignment(48); }) == "gguf::Writer: general.alignment must be a nonzero power of 2, got 48");
    CHECK(error_of([&] { w.set_alignment(0); }) == "gguf::Writer: general.alignment must be a nonzero power of 2, got 0");
    CHECK(error_of([&] { (void)gguf::encode_array(std::vector<gguf::EncodedValue>{gguf::encode(1), gguf::encode(1.0f)}); }) ==
          "gguf: encode_array: element 1 is f32 but element 0 is i32 (a GGUF array holds one type)");

    const std::vector<float> four(4);
    w.add_tensor("t", weft::DType::f32, Shape{4}, bytes_of(four));
    CHECK(error_of([&] { w.add_tensor("t", weft::DType::f32, Shape{4}, bytes_of(four)); }) == "gguf::Writer: tensor 't' was already added");
    CHECK(error_of([&] { w.add_tensor("u", weft::DType::f32, Shape{5}, bytes_of(four)); }) ==
          "gguf::Writer: tensor 'u': 16 bytes given, but F32 [5] takes 20");
    CHECK(error_of([&] { w.add_tensor("u", GgmlType::q8_0, Shape{2, 48}, [](const gguf::Writer::Sink&) {}); }) ==
          "gguf::Writer: tensor 'u': rows of 48 values are not a whole number of Q8_0 blocks (32 values each)");
    CHECK(error_of([&] { w.add_tensor("u", GgmlType::f32, Shape{1, 1, 1, 1, 1}, [](const gguf::Writer::Sink&) {}); }) ==
          "gguf::Writer: tensor 'u': shape [1, 1, 1, 1, 1] has 5 axes; GGUF tensors have at most 4");
    CHECK(error_of([&] { w.add_tensor("u", GgmlType::f32, Shape{4611686018427387904, 2}, [](const gguf::Writer::Sink&) {}); }) ==
          "gguf::Writer: tensor 'u': dimensions [2, 4611686018427387904] of F32 need more bytes than 64 bits can count");

    gguf::Writer short_source;
    short_source.add_tensor("s", GgmlType::f32, Shape{2}, [](const gguf::Writer::Sink& sink) { sink(std::as_bytes(std::span("abcd", 4))); });
    const std::string path = dir.file("short.gguf");
    CHECK(error_of([&] { short_source.write(path); }) == "gguf::Writer: the source of tensor 's' wrote 4 bytes, expected 8");
    CHECK_FALSE(fs::exists(path));
    gguf::Writer long_source;
    long_source.add_tensor("l", GgmlType::f32, Shape{1}, [](const gguf::Writer::Sink& sink) { sink(std::as_bytes(std::span("abcdefgh", 8))); });
    CHECK(error_of([&] { long_source.write(path); }) == "gguf::Writer: the source of tensor 'l' wrote more than its 4 bytes");
    CHECK_FALSE(fs::exists(path));
    CHECK(error_of([&] { gguf::Writer().write(dir.file("no_such_dir/x.gguf")); }) ==
          "gguf::Writer: cannot create '" + dir.file("no_such_dir/x.gguf") + "'");
}

TEST_CASE("gguf::File reads version 2 files and files with no tensors") {
    TempDir dir("gguf_v2");
    const gguf::File v2(dir.write("v2.gguf", file({kv_u32("a", 1)}, {info("t", {2}, 0, 0)}, f32(1) + f32(2), 32, 2)));
    CHECK(v2.version() == 2);
    CHECK(v2.weight("t").view<float>()(1) == 2.0f);
    // No tensors: the file may end right after the metadata, without padding.
    const std::string bare = header(0, 1) + kv_u32("a", 1);
    const gguf::File none(dir.write("none.gguf", bare));
    CHECK(none.tensors().empty());
    CHECK(none.get<int>("a") == 1);
    CHECK(gguf::File(dir.write("empty.gguf", header(0, 0))).metadata().empty());
}

// ---- llama.cpp's gguf-py as the reference --------------------------------------------------

TEST_CASE("gguf::File reads every value and tensor of the file gguf-py wrote") {
    const gguf::File f(reference("reference.gguf"));
    CHECK(f.version() == 3);
    CHECK(f.metadata().size() == 31);
    CHECK(f.get<std::string>("general.architecture") == "weft-test");
    CHECK(f.get<std::uint8_t>("test.u8") == 200);
    CHECK(f.get<std::int8_t>("test.i8") == -100);
    CHECK(f.get<std::uint16_t>("test.u16") == 60000);
    CHECK(f.get<std::int16_t>("test.i16") == -30000);
    CHECK(f.get<std::uint32_t>("test.u32") == 4000000000u);
    CHECK(f.get<std::int32_t>("test.i32") == -2000000000);
    CHECK(f.get<float>("test.f32") == 3.25f);
    CHECK(f.get<bool>("test.bool_true"));
    CHECK_FALSE(f.get<bool>("test.bool_false"));
    CHECK(f.get<std::string>("test.string") == "h\xc3\xa9llo, w\xc3\xb6rld \xe2\x9c\x93");
    CHECK(f.get<std::string>("test.string_not_utf8") == std::string("\xff\xfe bytes \0 kept", 15));
    CHECK(f.get<std::string>("test.string_empty").empty());
    CHECK(f.get<std::uint64_t>("test.u64") == std::numeric_limits<std::uint64_t>::max());
    CHECK(f.get<std::int64_t>("test.i64") == std::numeric_limits<std::int64_t>::min());
    CHECK(f.get<double>("test.f64") == 0.1);

    CHECK(f.get_array<std::uint8_t>("test.array_u8").to_vector() == std::vector<std::uint8_t>{0, 1, 255});
    CHECK(f.get_array<std::int8_t>("test.array_i8").to_vector() == std::vector<std::int8_t>{-128, 0, 127});
    CHECK(f.get_array<std::uint16_t>("test.array_u16").to_vector() == std::vector<std::uint16_t>{0, 65535});
    CHECK(f.get_array<std::int16_t>("test.array_i16").to_vector() == std::vector<std::int16_t>{-32768, 32767});
    CHECK(f.get_array<std::uint32_t>("test.array_u32").to_vector() == std::vector<std::uint32_t>{0, 4294967295u});
    CHECK(f.get_array<std::int32_t>("test.array_i32").to_vector() == std::vector<std::int32_t>{-2147483647 - 1, 2147483647, 5});
    CHECK(f.get_array<float>("test.array_f32").to_vector() == std::vector<float>{1.5f, -2.25f, 1e-3f});
    CHECK(f.get_array<bool>("test.array_bool").to_vector() == std::vector<bool>{true, false, true});
    CHECK(f.get_array<std::uint64_t>("test.array_u64")[1] == std::numeric_limits<std::uint64_t>::max());
    CHECK(f.get_array<std::int64_t>("test.array_i64")[0] == std::numeric_limits<std::int64_t>::min());
    CHECK(f.get_array<double>("test.array_f64").to_vector() == std::vector<double>{0.1, -1e300});
    CHECK(f.get_array<std::string_view>("test.array_string").to_vector() ==
          std::vector<std::string_view>{"a", "", "\xc3\xbcml\xc3\xa4ut", "<|end_of_text|>"});
    const gguf::Value& ni = f.value("test.nested_i32");
    REQUIRE(ni.size() == 2);
    CHECK(ni.at(0).array<std::int32_t>().to_vector() == std::vector<std::int32_t>{1, 2, 3});
    CHECK(ni.at(1).array<std::int32_t>().to_vector() == std::vector<std::int32_t>{4, 5});
    CHECK(f.value("test.nested_string").at(0).array<std::string_view>()[1] == "bc");
    CHECK(f.value("test.nested_string").at(1).array<std::string_view>()[0] == "d");
    const gguf::Value& n3 = f.value("test.nested3_f32");
    CHECK(n3.at(0).at(0).array<float>()[0] == 1.5f);
    CHECK(n3.at(1).at(0).array<float>().to_vector() == std::vector<float>{2.5f, 3.5f});
    CHECK(n3.at(1).at(1).at(0).as<float>() == 4.5f);

    REQUIRE(f.tensors().size() == 22);
    const auto m = f.weight("f32.matrix").view<float>();
    CHECK(m.shape() == Shape{3, 5});
    for (weft::Index r = 0; r < 3; ++r)
        for (weft::Index c = 0; c < 5; ++c) CHECK(m(r, c) == static_cast<float>(r * 5 + c) * 0.25f - 1);
    const auto h = f.weight("f16.vector").view<weft::f16>();
    CHECK(float(h(1)) == -2.5f);
    CHECK(float(h(3)) == 65504.0f);
    const auto b = f.weight("bf16.matrix").view<weft::bf16>();
    CHECK(b.shape() == Shape{2, 4});
    CHECK(float(b(0, 1)) == -7.0f);
    CHECK(float(b(1, 3)) == -3.5f);
    CHECK(f.weight("i8.vector").view<std::int8_t>()(5) == 127);
    CHECK(f.weight("i32.matrix").view<std::int32_t>()(1, 1) == -2147483647 - 1);
    CHECK(f.weight("f64.vector").view<double>()(2) == 1e300);
    CHECK(f.find_tensor("i16.vector")->type == GgmlType::i16);
    CHECK(f.tensor_bytes("i64.vector").size() == 16);
    CHECK(f.find_tensor("q2_k.raw")->shape == Shape{1, 256});
    CHECK(f.find_tensor("iq4_nl.raw")->shape == Shape{2, 32});
    CHECK(f.find_tensor("q4_k.matrix")->shape == Shape{1, 512});
    CHECK(f.weight("q5_k.matrix").dtype == weft::DType::q5_k);
    CHECK(f.tensor_bytes("q6_k.matrix").size() == 420);
}

TEST_CASE("gguf::File's Q8_0 and Q4_0 blocks from gguf-py dequantize to gguf-py's values, within half a step of the source") {
    const gguf::File f(reference("reference.gguf"));
    for (const char* name : {"q8_0", "q4_0"}) {
        const std::string type = name;
        CAPTURE(type);
        const weft::Weight q = f.weight(type + ".matrix");
        const auto source = f.weight(type + ".source").view<float>();
        const auto want = f.weight(type + ".dequant").view<float>();
        REQUIRE(q.shape == Shape{2, 64});
        const std::size_t block_bytes = weft::block_bytes(q.dtype);
        int mismatches = 0;
        for (weft::Index r = 0; r < 2; ++r)
            for (weft::Index blk = 0; blk < 2; ++blk) {
                const std::byte* block = q.data + static_cast<std::size_t>(r * 2 + blk) * block_bytes;
                std::uint16_t d_bits;
                std::memcpy(&d_bits, block, 2);
                const float d = weft::f16_bits_to_float(d_bits);
                for (int j = 0; j < 32; ++j) {
                    int level;
                    if (type == "q8_0") {
                        level = static_cast<std::int8_t>(std::to_integer<int>(block[2 + j]));
                    } else {
                        const int byte = std::to_integer<int>(block[2 + j % 16]);
                        level = (j < 16 ? byte & 0xF : byte >> 4) - 8;
                    }
                    const weft::Index c = blk * 32 + j;
                    const float x = d * static_cast<float>(level);
                    if (x != want(r, c)) ++mismatches;
                    // Q4_0 clamps the level 16 (a value as large as the block's extreme, on its other side) to 15.
                    CHECK(std::abs(x - source(r, c)) <= std::abs(d) * (type == "q8_0" ? 0.5f : 1.0f) + 1e-6f);
                }
            }
        CHECK(mismatches == 0);
    }
}

TEST_CASE("gguf::File reads gguf-py's custom alignment") {
    const gguf::File f(reference("align64.gguf"));
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() % 64 == 0);
    CHECK(f.find_tensor("b")->offset == 64);
    CHECK(f.weight("a").view<float>()(2) == 3.0f);
    CHECK(float(f.weight("b").view<weft::f16>()(1, 0)) == 6.0f);
}

TEST_CASE("gguf::Writer rewrites gguf-py's files byte for byte") {
    for (const char* name : {"reference.gguf", "align64.gguf"}) {
        CAPTURE(name);
        const gguf::File f(reference(name));
        gguf::Writer w;
        for (const gguf::File::Entry& e : f.metadata()) w.add(std::string(e.key), e.value);
        for (const gguf::TensorInfo& t : f.tensors()) w.add_tensor(t.name, t.type, t.shape, f.tensor_bytes(t.name));
        std::ostringstream out;
        w.write(out);
        CHECK(out.str() == slurp(reference(name)));
    }
}

// ---- each way a file can lie ----------------------------------------------------------------

TEST_CASE("gguf::File refuses a missing or short magic and names what it found") {
    TempDir dir("gguf_magic");
    check_rejected(dir, "", "the file has 0 bytes, too short for the magic \"GGUF\"");
    check_rejected(dir, "GGU", "the file has 3 bytes, too short");
    check_rejected(dir, "GGML" + u32(3) + u64(0) + u64(0), "expected the magic \"GGUF\" at byte 0, found \"GGML\" (not a GGUF file)");
    check_rejected(dir, std::string("\x00\x01\xff\x7f", 4) + "rest", "found \"\\x00\\x01\\xFF\\x7F\"");
    check_rejected(dir, "tjgg" + u32(3), "(a pre-GGUF ggml file; convert it to GGUF)");
    check_rejected(dir, "{\"__metadata__\": {}}", "found \"{\"__\" (not a GGUF file)");
}

TEST_CASE("gguf::File refuses versions other than 2 and 3, and big-endian files") {
    TempDir dir("gguf_version");
    check_rejected(dir, header(0, 0, 1), "version 1 is not supported (GGUF v1 used 32-bit counts; weft reads versions 2 and 3)");
    check_rejected(dir, header(0, 0, 4), "version 4 is not supported; weft reads versions 2 and 3");
    check_rejected(dir, header(0, 0, 0), "version 0 is not supported");
    check_rejected(dir, header(0, 0, 0x03000000), "version field reads 50331648, a byte-swapped 3: the file is big-endian");
}

TEST_CASE("gguf::File refuses counts larger than the bytes left could hold") {
    TempDir dir("gguf_counts");
    check_rejected(dir, header(0, 1000000), "the metadata count counts 1000000 items at byte 24, but the 0 bytes left in the file hold at most 0 (13 bytes each at least)");
    check_rejected(dir, header(5, 0) + std::string(100, '\0'), "the tensor count counts 5 items at byte 24, but the 100 bytes left in the file hold at most 4 (24 bytes each at least)");
    check_rejected(dir, header(~std::uint64_t(0), ~std::uint64_t(0)), "the metadata count counts 18446744073709551615 items");
    check_rejected(dir, header(3, 3) + std::string(100, '\0'), "the header counts 3 metadata entries and 3 tensors, but the 100 bytes left in the file cannot hold them");
}

TEST_CASE("gguf::File refuses strings and arrays longer than the bytes left") {
    TempDir dir("gguf_lengths");
    check_rejected(dir, header(0, 1) + u64(1000) + "abc" + std::string(20, '\0'),
                   "the key of metadata entry 0 (1000 bytes) at byte 32 needs 1000 bytes, but the file ends at byte 55");
    check_rejected(dir, header(0, 1) + u64(~std::uint64_t(0)) + "abc" + std::string(20, '\0'), "the key of metadata entry 0 (18446744073709551615 bytes)");
    check_rejected(dir, header(0, 1) + kv("k", 8, u64(500) + "short"), "the string of metadata 'k' (500 bytes) at byte 45 needs 500 bytes, but the file ends at byte 50");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(4) + u64(100) + u32(1)),
                   "array 'k' counts 100 items at byte 49, but the 4 bytes left in the file hold at most 1 (4 bytes each at least)");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(10) + u64(1ull << 61) + u64(1)), "array 'k' counts 2305843009213693952 items");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(8) + u64(2) + str("ok") + u64(50) + "x"),
                   "string 1 of array 'k' (50 bytes) at byte 67 needs 50 bytes, but the file ends at byte 68");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(9) + u64(2) + u32(4) + u64(1) + u32(7) + u32(4) + u64(9) + u32(1)),
                   "array 'k[1]' counts 9 items");
    check_rejected(dir, header(0, 1) + kv("k", 4, "\1\2"), "the u32 of metadata 'k' at byte 37 needs 4 bytes, but the file ends at byte 39");
}

TEST_CASE("gguf::File refuses unknown value types and bools that are neither 0 nor 1") {
    TempDir dir("gguf_value_types");
    check_rejected(dir, header(0, 1) + kv("k", 13, u64(0)), "metadata 'k' has value type 13, which is not a GGUF type (0..12)");
    check_rejected(dir, header(0, 1) + kv("k", 0xFFFFFFFF, u64(0)), "has value type 4294967295");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(13) + u64(0)), "array 'k' has element type 13, which is not a GGUF type (0..12)");
    check_rejected(dir, header(0, 1) + kv("k", 7, u8(2)), "metadata 'k' is a bool stored as 2, expected 0 or 1");
    check_rejected(dir, header(0, 1) + kv("k", 9, u32(7) + u64(3) + u8(1) + u8(0) + u8(9)), "array 'k': element 2 is a bool stored as 9, expected 0 or 1");
}

TEST_CASE("gguf::File refuses a key or a tensor name that appears twice") {
    TempDir dir("gguf_duplicates");
    check_rejected(dir, header(0, 3) + kv_u32("a", 1) + kv_u32("b", 1) + kv_u32("a", 2), "metadata key 'a' appears twice (entries 0 and 2)");
    check_rejected(dir, file({}, {info("t", {4}, 0, 0), info("t", {4}, 0, 32)}, std::string(48, '\0')), "tensor 't' appears twice (tensor infos 0 and 1)");
}

TEST_CASE("gguf::File refuses arrays nested deeper than the limit") {
    TempDir dir("gguf_depth");
    // depth 3: an array of arrays of arrays of i32
    const std::string depth3 = kv("k", 9, u32(9) + u64(1) + u32(9) + u64(1) + u32(5) + u64(1) + u32(7));
    check_rejected(dir, header(0, 1) + depth3, "array 'k[0]' nests arrays 3 deep; the limit is 2 (gguf::Limits::max_array_depth)", gguf::Limits{.max_array_depth = 2});
    CHECK(gguf::File(dir.write("ok.gguf", header(0, 1) + depth3), gguf::Limits{.max_array_depth = 3}).value("k").at(0).at(0).at(0).as<int>() == 7);
    // The default refuses 9 levels (arrays of arrays that a hostile file could nest without end).
    std::string deep = kv("k", 9, "");
    for (int i = 0; i < 8; ++i) deep += u32(9) + u64(1);
    deep += u32(5) + u64(0);
    check_rejected(dir, header(0, 1) + deep, "nests arrays 9 deep; the limit is 8");
}

TEST_CASE("gguf::File refuses metadata beyond the user's limit") {
    TempDir dir("gguf_limit");
    const std::string ok = one_tensor_file({kv("tokenizer.ggml.tokens", 9, u32(8) + u64(3) + str("a") + str("bb") + str("ccc"))});
    CHECK(gguf::File(dir.write("ok.gguf", ok)).get_array<std::string_view>("tokenizer.ggml.tokens").size() == 3);
    check_rejected(dir, ok, "string 2 of array 'tokenizer.ggml.tokens' (3 bytes) at byte 96 runs past the limit of 97 bytes of metadata (gguf::Limits::max_metadata_bytes)",
                   gguf::Limits{.max_metadata_bytes = 97});
    check_rejected(dir, ok, "the length of string 2 of array 'tokenizer.ggml.tokens' at byte 88 runs past the limit of 95 bytes",
                   gguf::Limits{.max_metadata_bytes = 95});
    check_rejected(dir, ok, "the metadata count counts 1 items at byte 24, more than fit in the limit of 30 bytes", gguf::Limits{.max_metadata_bytes = 30});
    // A count that the file's size would allow but the limit does not is refused before anything is allocated.
    const std::string many = header(0, 1) + kv("k", 9, u32(8) + u64(100000)) + std::string(800000, '\0');
    check_rejected(dir, many, "array 'k' counts 100000 items at byte 49, more than fit in the limit of 1000 bytes", gguf::Limits{.max_metadata_bytes = 1000});
}

TEST_CASE("gguf::File refuses a general.alignment that is not a nonzero power of 2 stored as u32") {
    TempDir dir("gguf_alignment");
    check_rejected(dir, one_tensor_file({kv("general.alignment", 5, u32(32))}), "general.alignment is i32, expected u32");
    check_rejected(dir, one_tensor_file({kv("general.alignment", 8, str("32"))}), "general.alignment is string, expected u32");
    check_rejected(dir, one_tensor_file({kv_u32("general.alignment", 0)}), "general.alignment is 0, expected a nonzero power of 2");
    check_rejected(dir, one_tensor_file({kv_u32("general.alignment", 48)}), "general.alignment is 48, expected a nonzero power of 2");
    CHECK(gguf::File(dir.write("ok.gguf", one_tensor_file({kv_u32("general.alignment", 16)}))).alignment() == 16);
}

TEST_CASE("gguf::File refuses tensor infos with too many dimensions, oversized dimensions or counts that overflow") {
    TempDir dir("gguf_dims");
    check_rejected(dir, file({}, {info("t", {1, 1, 1, 1, 4}, 0, 0)}, std::string(16, '\0')), "tensor 't': n_dims is 5; GGUF tensors have at most 4 dimensions");
    check_rejected(dir, file({}, {info("t", {1ull << 63}, 0, 0)}), "tensor 't': dimension 0 is 9223372036854775808, more than a signed 64-bit count");
    check_rejected(dir, file({}, {info("t", {1ull << 32, 1ull << 32, 2}, 0, 0)}),
                   "tensor 't': dimensions [4294967296, 4294967296]... hold more elements than a signed 64-bit count");
    check_rejected(dir, file({}, {info("t", {1ull << 62}, 0, 0)}), "tensor 't': dimensions [4611686018427387904] of F32 need more bytes than 64 bits can count");
    check_rejected(dir, file({}, {info("t", {1ull << 61, 1}, 28, 0)}), "tensor 't': dimensions [2305843009213693952, 1] of F64 need more bytes than 64 bits can count");
    // (A block type stores at most 1.2 bytes per value, so only 4- and 8-byte types can overflow.)
}

TEST_CASE("gguf::File refuses unknown and removed ggml types, and rows that are not whole blocks") {
    TempDir dir("gguf_ggml_types");
    check_rejected(dir, file({}, {info("t", {4}, 99, 0)}, std::string(16, '\0')), "tensor 't': ggml type 99 is unknown (ggml's types: F32, F16, Q4_0");
    check_rejected(dir, file({}, {info("t", {4}, 4, 0)}, std::string(16, '\0')), "tensor 't': ggml type 4 was removed from ggml and is no longer valid in GGUF files");
    check_rejected(dir, file({}, {info("t", {4}, 31, 0)}, std::string(16, '\0')), "ggml type 31 was removed");
    check_rejected(dir, file({}, {info("t", {33, 2}, 8, 0)}, std::string(200, '\0')),
                   "tensor 't': rows of 33 values are not a whole number of Q8_0 blocks (32 values each)");
    check_rejected(dir, file({}, {info("t", {128}, 12, 0)}, std::string(200, '\0')), "rows of 128 values are not a whole number of Q4_K blocks (256 values each)");
    check_rejected(dir, file({}, {info("t", {}, 2, 0)}, std::string(32, '\0')), "rows of 1 values are not a whole number of Q4_0 blocks");
}

TEST_CASE("gguf::File refuses tensors that are misaligned, past the end of the file or overlapping") {
    TempDir dir("gguf_placement");
    check_rejected(dir, file({}, {info("t", {4}, 0, 4)}, std::string(32, '\0')), "tensor 't': data offset 4 is not a multiple of the alignment 32");
    check_rejected(dir, file({kv_u32("general.alignment", 64)}, {info("t", {4}, 0, 32)}, std::string(64, '\0'), 64), "data offset 32 is not a multiple of the alignment 64");
    const std::string short_data = file({}, {info("t", {4}, 0, 0)}, std::string(12, '\0'));
    check_rejected(dir, short_data, "tensor 't' ends at byte 80 but the file has 76 (F32 [4], 16 bytes at data offset 0; the data section starts at byte 64)");
    check_rejected(dir, file({}, {info("t", {4}, 0, 1ull << 40)}, std::string(16, '\0')), "tensor 't' ends at byte 1099511627856 but the file has 80");
    check_rejected(dir, file({}, {info("t", {4}, 0, ~std::uint64_t(31))}, std::string(16, '\0')), "tensor 't' ends at byte 2^64 or more but the file has 80");
    // 'b' starts halfway into 'a'.
    check_rejected(dir, file({}, {info("a", {16}, 0, 0), info("b", {8}, 0, 32)}, std::string(64, '\0')),
                   "tensor 'b' (bytes 128..160) overlaps tensor 'a' (bytes 96..160)");
    check_rejected(dir, file({}, {info("a", {8}, 0, 0), info("b", {8}, 1, 0)}, std::string(64, '\0')), "overlaps tensor");
    // Gaps between tensors are allowed, as is a zero-size tensor anywhere.
    const gguf::File gaps(dir.write("gaps.gguf", file({}, {info("a", {4}, 0, 64), info("z", {0}, 0, 64)}, std::string(80, '\0'))));
    CHECK(gaps.find_tensor("a")->offset == 64);
    CHECK(gaps.find_tensor("z")->nbytes() == 0);
}

TEST_CASE("gguf::File refuses a file truncated at any byte before the end of its tensor data, naming the section") {
    TempDir dir("gguf_truncated");
    const Sample sample;
    std::ostringstream out;
    sample.writer().write(out);
    const std::string full = out.str();
    const std::string full_path = dir.write("full.gguf", full);
    std::uint64_t kv_end = 0, infos_end = 0, data_end = 0;
    {
        const gguf::File f(full_path);
        const gguf::File::Entry& last = f.metadata().back();
        kv_end = static_cast<std::uint64_t>(last.value.payload().data() + last.value.payload().size() - f.bytes().data());
        const gguf::TensorInfo& t0 = f.tensors().front();
        infos_end = kv_end;
        for (const gguf::TensorInfo& t : f.tensors()) infos_end += 8 + t.name.size() + 4 + 8 * t.dims.size() + 4 + 8;
        for (const gguf::TensorInfo& t : f.tensors()) data_end = std::max(data_end, t.end);
        CHECK(t0.begin == f.data_offset());
        CHECK(f.data_offset() == (infos_end + 31) / 32 * 32);
    }
    // The section boundaries, with the message each truncation gives.
    check_rejected(dir, full.substr(0, 2), "too short for the magic");
    check_rejected(dir, full.substr(0, 4), "the version at byte 4 needs 4 bytes, but the file ends at byte 4");
    check_rejected(dir, full.substr(0, 8), "the tensor count at byte 8 needs 8 bytes, but the file ends at byte 8");
    check_rejected(dir, full.substr(0, 16), "the metadata count at byte 16 needs 8 bytes, but the file ends at byte 16");
    check_rejected(dir, full.substr(0, 24), "the metadata count counts 25 items at byte 24, but the 0 bytes left");
    check_rejected(dir, full.substr(0, 600), "the header counts 25 metadata entries and 13 tensors, but the 576 bytes left in the file cannot hold them");
    check_rejected(dir, full.substr(0, 700), "the length of the key of metadata entry 22 at byte 698 needs 8 bytes, but the file ends at byte 700");
    check_rejected(dir, full.substr(0, static_cast<std::size_t>(kv_end - 1)), "array 'a.nested3[1][0]' counts 1 items");
    check_rejected(dir, full.substr(0, static_cast<std::size_t>(kv_end)), "the length of the name of tensor 0 at byte " + std::to_string(kv_end) + " needs 8 bytes");
    check_rejected(dir, full.substr(0, static_cast<std::size_t>(infos_end - 1)), "the data offset of tensor 'empty'");
    check_rejected(dir, full.substr(0, static_cast<std::size_t>(infos_end)), "the data section starts at byte");
    check_rejected(dir, full.substr(0, static_cast<std::size_t>(data_end - 1)), "ends at byte " + std::to_string(data_end) + " but the file has " + std::to_string(data_end - 1));

    // And every other length: always an error naming the file, never a crash or a silent success;
    // from the end of the last tensor's data on (the final padding), the file is whole.
    // (One file, shortened a byte at a time: rewriting it for each length is slow on some disks.)
    int failures = 0;
    const std::string path = dir.write("cut.gguf", full);
    for (std::size_t n = full.size(); n-- > 0;) {
        fs::resize_file(path, n);
        const std::string message = error_of([&] { gguf::File f(path); });
        const bool ok = n < data_end ? has(message, "gguf: " + path + ": ") : message == "<no error thrown>";
        if (!ok) {
            ++failures;
            INFO("truncated to ", n, " bytes: ", message);
            CHECK(false);
        }
    }
    CHECK(failures == 0);
}

TEST_CASE("gguf::File reports a missing file by name") {
    CHECK(has(error_of([] { gguf::File f("no_such_dir_weft/model.gguf"); }), "no_such_dir_weft/model.gguf"));
}

}  // namespace test_gguf
