// weft/io/gguf.hpp — GGUF, llama.cpp's model format: gguf::File maps a file, validates every field
// and hands out zero-copy Weights; gguf::Writer writes version 3 files, streaming tensor data so a
// model is never held twice in memory. Sits on core/storage.hpp (MappedFile) and core/weight.hpp.
//
// Format (little-endian): "GGUF", u32 version (2 or 3), u64 tensor_count, u64 kv_count; kv_count
// metadata entries (string key, u32 value type, value); tensor_count tensor infos (string name,
// u32 n_dims ≤ 4, u64 dims[n_dims] with dims[0] the contiguous axis, u32 ggml type, u64 offset into
// the data section); zero padding to general.alignment (default 32); the data section. A string is
// a u64 byte count and the bytes; an array is a u32 element type, a u64 count and the elements.
// Nothing in a file is trusted: every count and offset is checked, with overflow-safe arithmetic,
// before anything is read, allocated or pointed at.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/weight.hpp"

namespace weft::gguf {

static_assert(std::endian::native == std::endian::little,
              "weft: GGUF data is little-endian and weft uses it in place, so it needs a little-endian host");

inline constexpr std::uint32_t default_alignment = 32;
inline constexpr int max_dims = 4;  // GGML_MAX_DIMS

// ---- metadata value types ------------------------------------------------------------------

enum class ValueType : std::uint32_t {
    u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
    string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

inline bool is_value_type(std::uint32_t t) { return t <= 12; }
inline const char* value_type_name(ValueType t);
// Bytes of one value of a fixed-size type; 0 for string and array.
inline std::size_t value_type_size(ValueType t);
inline bool is_integer(ValueType t);

// The GGUF type that stores a C++ scalar: bool, (u)int8..64_t, float, double.
template <class T> constexpr ValueType value_type_of();

// ---- ggml tensor types ---------------------------------------------------------------------

// Every tensor type ggml defines today (ggml.h, enum ggml_type). Ids 4, 5, 31–33 and 36–38 were
// removed from ggml and are refused like unknown ids.
enum class GgmlType : std::uint32_t {
    f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
    q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
    iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23,
    i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
    tq1_0 = 34, tq2_0 = 35, mxfp4 = 39, nvfp4 = 40, q1_0 = 41,
};

// A block of block_size values is stored in block_bytes bytes (1 and the element size for the
// plain types). Values from ggml's type_traits (the same as gguf-py's GGML_QUANT_SIZES).
struct GgmlTypeInfo {
    GgmlType type;
    const char* name;
    std::uint32_t block_size;
    std::uint32_t block_bytes;
};

inline constexpr GgmlTypeInfo ggml_types[] = {
    {GgmlType::f32, "F32", 1, 4},           {GgmlType::f16, "F16", 1, 2},
    {GgmlType::q4_0, "Q4_0", 32, 18},       {GgmlType::q4_1, "Q4_1", 32, 20},
    {GgmlType::q5_0, "Q5_0", 32, 22},       {GgmlType::q5_1, "Q5_1", 32, 24},
    {GgmlType::q8_0, "Q8_0", 32, 34},       {GgmlType::q8_1, "Q8_1", 32, 40},
    {GgmlType::q2_k, "Q2_K", 256, 84},      {GgmlType::q3_k, "Q3_K", 256, 110},
    {GgmlType::q4_k, "Q4_K", 256, 144},     {GgmlType::q5_k, "Q5_K", 256, 176},
    {GgmlType::q6_k, "Q6_K", 256, 210},     {GgmlType::q8_k, "Q8_K", 256, 292},
    {GgmlType::iq2_xxs, "IQ2_XXS", 256, 66}, {GgmlType::iq2_xs, "IQ2_XS", 256, 74},
    {GgmlType::iq3_xxs, "IQ3_XXS", 256, 98}, {GgmlType::iq1_s, "IQ1_S", 256, 50},
    {GgmlType::iq4_nl, "IQ4_NL", 32, 18},   {GgmlType::iq3_s, "IQ3_S", 256, 110},
    {GgmlType::iq2_s, "IQ2_S", 256, 82},    {GgmlType::iq4_xs, "IQ4_XS", 256, 136},
    {GgmlType::i8, "I8", 1, 1},             {GgmlType::i16, "I16", 1, 2},
    {GgmlType::i32, "I32", 1, 4},           {GgmlType::i64, "I64", 1, 8},
    {GgmlType::f64, "F64", 1, 8},           {GgmlType::iq1_m, "IQ1_M", 256, 56},
    {GgmlType::bf16, "BF16", 1, 2},         {GgmlType::tq1_0, "TQ1_0", 256, 54},
    {GgmlType::tq2_0, "TQ2_0", 256, 66},    {GgmlType::mxfp4, "MXFP4", 32, 17},
    {GgmlType::nvfp4, "NVFP4", 64, 36},     {GgmlType::q1_0, "Q1_0", 128, 18},
};

// nullptr if `id` is not a ggml type (or one ggml removed).
inline const GgmlTypeInfo* find_ggml_type(std::uint32_t id);
// Throws for a value outside the table.
inline const GgmlTypeInfo& ggml_type_info(GgmlType t);
inline const char* ggml_type_name(GgmlType t) { return ggml_type_info(t).name; }
// The weft dtype of a ggml type weft can compute with: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K,
// Q6_K, I8, I32, F64; nullopt for the others (they still load and validate; see File::tensor_bytes).
inline std::optional<DType> to_dtype(GgmlType t);
inline GgmlType to_ggml(DType t);

// ---- limits --------------------------------------------------------------------------------

struct Limits {
    // Bytes before the data section (header, metadata, tensor infos) that the loader will read.
    // What it allocates to index them is at most about as much again, so a lying count cannot make
    // it read or allocate more. Llama 3's 128k-token vocabulary and merges take about 8 MB.
    std::uint64_t max_metadata_bytes = std::uint64_t(128) << 20;
    // How deep arrays of arrays may nest: an array of arrays of u8 has depth 2.
    int max_array_depth = 8;
};

// ---- reading -------------------------------------------------------------------------------

class File;
class Value;

namespace detail {
// What Values of one File share: the file's name for messages and the offsets of the elements of
// variable-size arrays. Heap-allocated so it stays put when the File moves.
struct Shared {
    std::string origin;                // "gguf: <path>: "
    std::vector<std::uint64_t> pool;   // see Value
};
template <class T> T load(const std::byte* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}
}  // namespace detail

// The elements of an array value, read from the mapping on access (nothing is copied up front):
// T is the element's exact type — bool, (u)int8..64_t, float, double, or std::string_view for
// strings (views into the mapping, bytes kept as stored even if they are not valid UTF-8).
template <class T>
class ArrayView {
public:
    ArrayView() = default;
    std::size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    T operator[](std::size_t i) const {
        if constexpr (std::is_same_v<T, std::string_view>) {
            const std::byte* p = data_ + offsets_[i];
            return {reinterpret_cast<const char*>(p + 8), static_cast<std::size_t>(detail::load<std::uint64_t>(p))};
        } else if constexpr (std::is_same_v<T, bool>) {
            return data_[i] != std::byte{0};
        } else {
            return detail::load<T>(data_ + i * sizeof(T));
        }
    }
    T at(std::size_t i) const {
        if (i >= count_) fail("gguf: array index ", i, " is out of range for an array of ", count_);
        return (*this)[i];
    }
    std::vector<T> to_vector() const {
        std::vector<T> out;
        out.reserve(count_);
        for (std::size_t i = 0; i < count_; ++i) out.push_back((*this)[i]);
        return out;
    }

    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        using iterator_concept = std::forward_iterator_tag;
        using iterator_category = std::input_iterator_tag;  // elements are made on access, not referenced
        iterator() = default;
        iterator(const ArrayView* a, std::size_t i) : a_(a), i_(i) {}
        T operator*() const { return (*a_)[i_]; }
        iterator& operator++() { ++i_; return *this; }
        iterator operator++(int) { iterator t = *this; ++i_; return t; }
        bool operator==(const iterator& o) const { return i_ == o.i_; }
    private:
        const ArrayView* a_ = nullptr;
        std::size_t i_ = 0;
    };
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, count_}; }

private:
    friend class Value;
    ArrayView(const std::byte* data, std::size_t count, const std::uint64_t* offsets)
        : data_(data), count_(count), offsets_(offsets) {}
    const std::byte* data_ = nullptr;
    std::size_t count_ = 0;
    const std::uint64_t* offsets_ = nullptr;  // strings: where each element starts, from data_
};

// One metadata value, viewed in place in the mapping (valid while its File lives).
//   Scalars: as<T>() converts under these rules, and throws naming the key otherwise:
//     integers — any stored integer type (u8 … i64) whose value fits T exactly, so a u32 reads as
//       std::int64_t and an i32 holding 7 as std::uint32_t, but -1 never as unsigned; bool, float
//       and string values are not integers;
//     float — f32 only; double — f32 or f64; bool — bool only;
//     std::string / std::string_view — string only (bytes as stored).
//   Arrays: element_type(), size(), array<T>() with T the exact element type, at(i) for any
//   element (arrays of arrays included).
class Value {
public:
    Value() = default;
    ValueType type() const { return type_; }
    bool is_array() const { return type_ == ValueType::array; }
    std::string_view key() const { return key_; }
    // The value's bytes as stored after its type tag (an array's start with its element type).
    std::span<const std::byte> payload() const { return {data_, static_cast<std::size_t>(bytes_)}; }

    template <class T> T as() const;

    ValueType element_type() const { require_array(); return elem_type_; }
    std::uint64_t size() const { require_array(); return count_; }
    template <class T> ArrayView<T> array() const;
    Value at(std::uint64_t i) const;

private:
    friend class File;
    [[noreturn]] void mismatch(const char* expected) const;
    void require_array() const {
        if (type_ != ValueType::array) fail(where(), " is ", value_type_name(type_), ", not an array");
    }
    std::string where() const {
        return (shared_ ? shared_->origin : std::string("gguf: ")) + "metadata '" +
               (key_.size() <= 120 ? std::string(key_) : std::string(key_.substr(0, 117)) + "...") + path_ + "'";
    }

    ValueType type_ = ValueType::u8;
    const std::byte* data_ = nullptr;  // payload start
    std::uint64_t bytes_ = 0;          // payload size
    // Arrays: element type and count; elements start 12 bytes into the payload. Strings and arrays
    // as elements have varying sizes, so the parser records where each starts (bytes from the first
    // element) in shared_->pool from pool_start_: one entry per string; two per array (its start,
    // then the pool_start of its own elements).
    ValueType elem_type_ = ValueType::u8;
    std::uint64_t count_ = 0;
    std::uint64_t pool_start_ = 0;
    std::string_view key_;
    std::string path_;  // an element's place below its key, for messages: "[3][0]"
    const detail::Shared* shared_ = nullptr;
};

// One tensor as its info describes it, after validation.
struct TensorInfo {
    std::string name;
    GgmlType type = GgmlType::f32;
    std::vector<std::uint64_t> dims;  // as stored: dims[0] is the contiguous axis (ggml's ne)
    Shape shape;                      // PyTorch order: dims reversed
    std::uint64_t numel = 0;
    std::uint64_t offset = 0;         // from the start of the data section, as stored
    std::uint64_t begin = 0, end = 0; // absolute byte range in the file
    std::uint64_t nbytes() const { return end - begin; }
};

// A memory-mapped GGUF file, validated in full by the constructor. `how`: mapped or copied into
// memory (core/storage.hpp); readers of metadata alone should map.
class File {
public:
    explicit File(const std::string& path, const Limits& limits = {}, FileLoad how = file_load());
    static File open(const std::string& path, const Limits& limits = {}) { return File(path, limits); }

    const std::string& path() const { return map_.path(); }
    std::uint32_t version() const { return version_; }
    std::uint64_t alignment() const { return alignment_; }
    // Where the data section starts (tensor offsets count from here).
    std::uint64_t data_offset() const { return data_offset_; }
    // The whole file.
    std::span<const std::byte> bytes() const { return map_.bytes(); }

    // ---- metadata ----
    struct Entry {
        std::string_view key;
        Value value;
    };
    // In file order.
    const std::vector<Entry>& metadata() const { return entries_; }
    const Value* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }
    // Throws naming the file and the key if absent.
    const Value& value(std::string_view key) const;
    // Typed scalars (rules at Value): get throws if the key is absent or holds another type;
    // get_or and get_optional give the fallback / nullopt only when the key is absent.
    template <class T> T get(std::string_view key) const { return value(key).as<T>(); }
    template <class T> T get_or(std::string_view key, T fallback) const {
        const Value* v = find(key);
        return v ? v->as<T>() : fallback;
    }
    template <class T> std::optional<T> get_optional(std::string_view key) const {
        const Value* v = find(key);
        return v ? std::optional<T>(v->as<T>()) : std::nullopt;
    }
    // An array of exactly T elements (std::string_view for strings), read in place.
    template <class T> ArrayView<T> get_array(std::string_view key) const { return value(key).array<T>(); }

    // ---- tensors ----
    // In the order of their infos.
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    const TensorInfo* find_tensor(std::string_view name) const;
    bool has_tensor(std::string_view name) const { return find_tensor(name) != nullptr; }
    // The stored bytes of a tensor of any type. Throws if absent.
    std::span<const std::byte> tensor_bytes(std::string_view name) const;
    // A tensor of a type weft computes with (to_dtype), in place in the mapping. Throws if absent
    // or of another type.
    Weight weight(std::string_view name) const;
    // Whether the file was copied into memory (FileLoad::copy, or no mmap) rather than mapped.
    bool copied() const { return map_.copied(); }
    // Copied files only: calls rewrite(bytes) with the whole file writable (TensorInfo::begin,
    // nbytes locate a tensor), for loaders that lay weights out in memory their own way
    // (quant/interleave.hpp). The infos and weight() still describe the stored types.
    template <class Rewrite>
    void edit(Rewrite&& rewrite) { map_.edit(rewrite); }

private:
    class Parser;
    [[noreturn]] void fail_here(const auto&... parts) const { fail(shared_->origin, parts...); }
    const TensorInfo& tensor(std::string_view name) const;

    MappedFile map_;
    std::unique_ptr<detail::Shared> shared_;
    std::uint32_t version_ = 0;
    std::uint64_t alignment_ = default_alignment;
    std::uint64_t data_offset_ = 0;
    std::vector<Entry> entries_;
    std::map<std::string_view, std::size_t, std::less<>> entry_index_;
    std::vector<TensorInfo> tensors_;
    std::map<std::string, std::size_t, std::less<>> tensor_index_;
    std::vector<const std::byte*> data_;  // per tensor, parallel to tensors_ (see place_data)
    std::vector<AlignedBuffer> copies_;
};

// ---- writing -------------------------------------------------------------------------------

// A metadata value ready to be written: its type and its bytes as GGUF stores them after the type
// tag. Made by encode / encode_array, or taken from a Value that was read.
struct EncodedValue {
    ValueType type = ValueType::u8;
    std::string bytes;
};

// A scalar: bool, (u)int8..64_t (by size and signedness), float, double.
template <class T> requires std::is_arithmetic_v<T> EncodedValue encode(T value);
inline EncodedValue encode(std::string_view s);
inline EncodedValue encode(const Value& v) { return {v.type(), std::string(reinterpret_cast<const char*>(v.payload().data()), v.payload().size())}; }
// An array of scalars, of strings (std::string, std::string_view or const char*), or of encoded
// values (all of one type; arrays of arrays are arrays of encoded arrays).
template <std::ranges::input_range R> EncodedValue encode_array(const R& values);

// Writes a GGUF v3 file: metadata in the order added, then tensor infos and data in the order
// added, each tensor's data padded to the alignment with zeros (as gguf-py and ggml write them).
// Tensor data is pulled from each tensor's source while the file is written, so sources can
// convert or quantize on the fly and nothing is held in memory in full.
class Writer {
public:
    // Receives a tensor's bytes in order, in pieces of any size.
    using Sink = std::function<void(std::span<const std::byte>)>;
    // Writes exactly the tensor's bytes into the sink.
    using Source = std::function<void(const Sink&)>;

    Writer() = default;

    // Throws if the key was added before. Adding "general.alignment" (a u32, a nonzero power of 2)
    // sets the alignment.
    void add(std::string key, EncodedValue value);
    void add(std::string key, const Value& value) { add(std::move(key), encode(value)); }
    template <class T> void add(std::string key, const T& value) { add(std::move(key), encode(value)); }
    template <std::ranges::input_range R> void add_array(std::string key, const R& values) {
        add(std::move(key), encode_array(values));
    }
    // Adds general.alignment (default: 32, written implicitly).
    void set_alignment(std::uint32_t alignment) { add("general.alignment", alignment); }
    std::uint64_t alignment() const { return alignment_; }

    // A tensor of `shape` (PyTorch order, at most 4 axes; the last axis must hold whole blocks),
    // its bytes produced by `source` during write().
    void add_tensor(std::string name, GgmlType type, const Shape& shape, Source source);
    // `bytes` must stay valid until write() returns; they are not copied.
    void add_tensor(std::string name, GgmlType type, const Shape& shape, std::span<const std::byte> bytes);
    void add_tensor(std::string name, DType dtype, const Shape& shape, std::span<const std::byte> bytes) {
        add_tensor(std::move(name), to_ggml(dtype), shape, bytes);
    }
    void add_tensor(std::string name, const Weight& w);

    std::size_t tensor_count() const { return tensors_.size(); }
    // Bytes a tensor of this type and shape takes; throws naming `name` if the shape is invalid.
    static std::uint64_t tensor_nbytes(std::string_view name, GgmlType type, const Shape& shape);

    // Writes the file (removing it again if anything fails).
    void write(const std::string& path) const;
    void write(std::ostream& out) const;

private:
    struct Pending {
        std::string name;
        GgmlType type;
        Shape shape;
        std::uint64_t nbytes;
        Source source;
    };
    std::vector<std::pair<std::string, EncodedValue>> kv_;
    std::vector<Pending> tensors_;
    std::uint64_t alignment_ = default_alignment;
};

// =============================================================================================
// Implementation
// =============================================================================================

inline const char* value_type_name(ValueType t) {
    switch (t) {
        case ValueType::u8: return "u8";
        case ValueType::i8: return "i8";
        case ValueType::u16: return "u16";
        case ValueType::i16: return "i16";
        case ValueType::u32: return "u32";
        case ValueType::i32: return "i32";
        case ValueType::f32: return "f32";
        case ValueType::boolean: return "bool";
        case ValueType::string: return "string";
        case ValueType::array: return "array";
        case ValueType::u64: return "u64";
        case ValueType::i64: return "i64";
        case ValueType::f64: return "f64";
    }
    return "?";
}

inline std::size_t value_type_size(ValueType t) {
    switch (t) {
        case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
        case ValueType::u16: case ValueType::i16: return 2;
        case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
        case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
        default: return 0;
    }
}

inline bool is_integer(ValueType t) {
    switch (t) {
        case ValueType::u8: case ValueType::i8: case ValueType::u16: case ValueType::i16:
        case ValueType::u32: case ValueType::i32: case ValueType::u64: case ValueType::i64: return true;
        default: return false;
    }
}

template <class T> constexpr ValueType value_type_of() {
    using U = std::remove_cv_t<T>;
    static_assert(!std::is_same_v<U, char>, "weft: gguf has no char type; use std::int8_t or std::uint8_t (or a string)");
    if constexpr (std::is_same_v<U, bool>) return ValueType::boolean;
    else if constexpr (std::is_same_v<U, float>) return ValueType::f32;
    else if constexpr (std::is_same_v<U, double>) return ValueType::f64;
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 1) return std::is_signed_v<U> ? ValueType::i8 : ValueType::u8;
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 2) return std::is_signed_v<U> ? ValueType::i16 : ValueType::u16;
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 4) return std::is_signed_v<U> ? ValueType::i32 : ValueType::u32;
    else if constexpr (std::is_integral_v<U> && sizeof(U) == 8) return std::is_signed_v<U> ? ValueType::i64 : ValueType::u64;
    else static_assert(sizeof(U) == 0, "weft: gguf scalars are bool, 8- to 64-bit integers, float and double");
}

inline const GgmlTypeInfo* find_ggml_type(std::uint32_t id) {
    for (const GgmlTypeInfo& t : ggml_types)
        if (static_cast<std::uint32_t>(t.type) == id) return &t;
    return nullptr;
}

inline const GgmlTypeInfo& ggml_type_info(GgmlType t) {
    const GgmlTypeInfo* info = find_ggml_type(static_cast<std::uint32_t>(t));
    if (!info) fail("gguf: ", static_cast<std::uint32_t>(t), " is not a ggml type id");
    return *info;
}

inline std::optional<DType> to_dtype(GgmlType t) {
    switch (t) {
        case GgmlType::f32: return DType::f32;
        case GgmlType::f16: return DType::f16;
        case GgmlType::bf16: return DType::bf16;
        case GgmlType::q8_0: return DType::q8_0;
        case GgmlType::q4_0: return DType::q4_0;
        case GgmlType::q4_k: return DType::q4_k;
        case GgmlType::q5_k: return DType::q5_k;
        case GgmlType::q6_k: return DType::q6_k;
        case GgmlType::i8: return DType::i8;
        case GgmlType::i32: return DType::i32;
        case GgmlType::f64: return DType::f64;
        default: return std::nullopt;
    }
}

inline GgmlType to_ggml(DType t) {
    switch (t) {
        case DType::f32: return GgmlType::f32;
        case DType::f16: return GgmlType::f16;
        case DType::bf16: return GgmlType::bf16;
        case DType::i32: return GgmlType::i32;
        case DType::i8: return GgmlType::i8;
        case DType::f64: return GgmlType::f64;
        case DType::q8_0: return GgmlType::q8_0;
        case DType::q4_0: return GgmlType::q4_0;
        case DType::q4_k: return GgmlType::q4_k;
        case DType::q5_k: return GgmlType::q5_k;
        case DType::q6_k: return GgmlType::q6_k;
        case DType::q8_0x16: case DType::q4_0x16: case DType::q4_kx16: case DType::q5_kx16: case DType::q6_kx16:
            break;  // weft's in-memory layouts (quant/interleave.hpp)
    }
    fail("gguf: dtype ", t, " has no ggml type");
}

namespace detail {

// a * b, or false if it overflows 64 bits.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
}

inline std::string dims_text(std::span<const std::uint64_t> dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

// Bytes for an error message: printable ASCII as is, the rest as \xNN; at most `max` of them.
inline std::string show_bytes(const std::byte* p, std::size_t n, std::size_t max = 64) {
    std::string s;
    for (std::size_t i = 0; i < std::min(n, max); ++i) {
        const auto c = std::to_integer<unsigned char>(p[i]);
        if (c >= 0x20 && c < 0x7F && c != '\\') {
            s += static_cast<char>(c);
        } else {
            char buf[5];
            std::snprintf(buf, sizeof buf, "\\x%02X", c);
            s += buf;
        }
    }
    if (n > max) s += "...";
    return s;
}

// What a type name of T reads as in messages.
template <class T> const char* cpp_type_name() {
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) return "string";
    else return value_type_name(value_type_of<T>());
}

// A name or key for an error message, cut short so a lying file cannot flood the message.
inline std::string short_text(std::string_view s) {
    return s.size() <= 120 ? std::string(s) : std::string(s.substr(0, 117)) + "...";
}

inline bool is_removed_ggml_type(std::uint32_t id) { return id == 4 || id == 5 || (id >= 31 && id <= 33) || (id >= 36 && id <= 38); }

inline std::string known_ggml_types() {
    std::string s;
    for (const GgmlTypeInfo& t : ggml_types) s += (s.empty() ? "" : ", ") + std::string(t.name);
    return s;
}

// Bytes a tensor of `dims` (ggml order) takes; fails through `bad` on a partial block or overflow.
template <class Bad>
std::uint64_t tensor_bytes(const GgmlTypeInfo& info, std::span<const std::uint64_t> dims, std::uint64_t numel, Bad&& bad) {
    const std::uint64_t row = dims.empty() ? 1 : dims[0];
    if (row % info.block_size != 0)
        bad("rows of ", row, " values are not a whole number of ", info.name, " blocks (", info.block_size, " values each)");
    std::uint64_t nbytes = 0;
    if (!checked_mul(numel / info.block_size, info.block_bytes, nbytes))
        bad("dimensions ", dims_text(dims), " of ", info.name, " need more bytes than 64 bits can count");
    return nbytes;
}

}  // namespace detail

// ---- Value ---------------------------------------------------------------------------------

inline void Value::mismatch(const char* expected) const {
    fail(where(), " is ", type_ == ValueType::array ? "an array" : value_type_name(type_), ", expected ", expected);
}

template <class T> T Value::as() const {
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
        if (type_ != ValueType::string) mismatch("a string");
        return T(reinterpret_cast<const char*>(data_ + 8), static_cast<std::size_t>(bytes_ - 8));
    } else if constexpr (std::is_same_v<T, bool>) {
        if (type_ != ValueType::boolean) mismatch("bool");
        return data_[0] != std::byte{0};
    } else if constexpr (std::is_same_v<T, float>) {
        if (type_ != ValueType::f32) mismatch("f32");
        return detail::load<float>(data_);
    } else if constexpr (std::is_same_v<T, double>) {
        if (type_ == ValueType::f32) return detail::load<float>(data_);
        if (type_ != ValueType::f64) mismatch("f32 or f64");
        return detail::load<double>(data_);
    } else {
        static_assert(std::is_integral_v<T>, "weft: Value::as<T> reads bool, integers, float, double, std::string and std::string_view");
        (void)value_type_of<T>();  // refuses char
        if (!is_integer(type_)) mismatch(detail::cpp_type_name<T>());
        auto check = [&](auto v) {
            using Wide = std::conditional_t<std::is_signed_v<decltype(v)>, std::int64_t, std::uint64_t>;
            if (!std::in_range<T>(v))
                fail(where(), " holds ", static_cast<Wide>(v), " (", value_type_name(type_), "), which does not fit ",
                     detail::cpp_type_name<T>());
            return static_cast<T>(v);
        };
        switch (type_) {
            case ValueType::u8: return check(detail::load<std::uint8_t>(data_));
            case ValueType::i8: return check(detail::load<std::int8_t>(data_));
            case ValueType::u16: return check(detail::load<std::uint16_t>(data_));
            case ValueType::i16: return check(detail::load<std::int16_t>(data_));
            case ValueType::u32: return check(detail::load<std::uint32_t>(data_));
            case ValueType::i32: return check(detail::load<std::int32_t>(data_));
            case ValueType::u64: return check(detail::load<std::uint64_t>(data_));
            default: return check(detail::load<std::int64_t>(data_));
        }
    }
}

template <class T> ArrayView<T> Value::array() const {
    static_assert(!std::is_same_v<T, std::string>, "weft: read string arrays as array<std::string_view> (views into the mapping)");
    require_array();
    ValueType want = ValueType::string;
    if constexpr (!std::is_same_v<T, std::string_view>) want = value_type_of<T>();
    if (elem_type_ != want)
        fail(where(), " is an array of ", value_type_name(elem_type_), ", not of ", value_type_name(want));
    const std::uint64_t* offsets = want == ValueType::string ? shared_->pool.data() + pool_start_ : nullptr;
    return ArrayView<T>(data_ + 12, static_cast<std::size_t>(count_), offsets);
}

inline Value Value::at(std::uint64_t i) const {
    require_array();
    if (i >= count_) fail(where(), ": index ", i, " is out of range for an array of ", count_);
    const std::byte* elems = data_ + 12;
    Value v;
    v.type_ = elem_type_;
    v.key_ = key_;
    v.path_ = path_ + "[" + std::to_string(i) + "]";
    v.shared_ = shared_;
    const std::vector<std::uint64_t>& pool = shared_->pool;
    if (const std::size_t size = value_type_size(elem_type_)) {
        v.data_ = elems + i * size;
        v.bytes_ = size;
    } else if (elem_type_ == ValueType::string) {
        v.data_ = elems + pool[pool_start_ + i];
        v.bytes_ = 8 + detail::load<std::uint64_t>(v.data_);
    } else {
        // An inner array: its header, its element count, and its own element offsets.
        v.data_ = elems + pool[pool_start_ + 2 * i];
        v.elem_type_ = detail::load<ValueType>(v.data_);
        v.count_ = detail::load<std::uint64_t>(v.data_ + 4);
        v.pool_start_ = pool[pool_start_ + 2 * i + 1];
        const std::uint64_t end = i + 1 < count_ ? pool[pool_start_ + 2 * (i + 1)] : bytes_ - 12;
        v.bytes_ = end - pool[pool_start_ + 2 * i];
    }
    return v;
}

// ---- File ----------------------------------------------------------------------------------

// Walks the bytes before the data section. Every read is checked first against the end of the
// file (a truncated or lying file) and then against Limits::max_metadata_bytes.
class File::Parser {
public:
    Parser(File& f, const Limits& limits)
        : f_(f), limits_(limits), base_(f.map_.data()), size_(f.map_.size()) {}

    void run();

private:
    template <class... Parts> [[noreturn]] void bad(const Parts&... parts) const { f_.fail_here(parts...); }

    // Makes sure `n` bytes follow pos_; `what` is called only to describe a failure.
    template <class What> void need(std::uint64_t n, What&& what) const {
        if (n > size_ - pos_)
            bad(what(), " at byte ", pos_, " needs ", n, " bytes, but the file ends at byte ", size_);
        if (pos_ + n > limits_.max_metadata_bytes)
            bad(what(), " at byte ", pos_, " runs past the limit of ", limits_.max_metadata_bytes,
                " bytes of metadata (gguf::Limits::max_metadata_bytes)");
    }
    // Makes sure `count` items of at least `min_bytes` each can follow pos_.
    template <class What> void need_items(std::uint64_t count, std::uint64_t min_bytes, What&& what) const {
        const std::uint64_t in_file = (size_ - pos_) / min_bytes;
        if (count > in_file)
            bad(what(), " counts ", count, " items at byte ", pos_, ", but the ", size_ - pos_,
                " bytes left in the file hold at most ", in_file, " (", min_bytes, " bytes each at least)");
        const std::uint64_t room = limits_.max_metadata_bytes > pos_ ? limits_.max_metadata_bytes - pos_ : 0;
        if (count > room / min_bytes)
            bad(what(), " counts ", count, " items at byte ", pos_, ", more than fit in the limit of ",
                limits_.max_metadata_bytes, " bytes of metadata (gguf::Limits::max_metadata_bytes)");
    }
    template <class T, class What> T read(What&& what) {
        need(sizeof(T), what);
        const T v = detail::load<T>(base_ + pos_);
        pos_ += sizeof(T);
        return v;
    }
    template <class What> std::string_view read_string(What&& what) {
        const std::uint64_t n = read<std::uint64_t>([&] { return "the length of " + what(); });
        need(n, [&] { return what() + " (" + std::to_string(n) + " bytes)"; });
        const std::string_view s(reinterpret_cast<const char*>(base_ + pos_), static_cast<std::size_t>(n));
        pos_ += n;
        return s;
    }
    void read_header();
    void read_metadata();
    // Reads an array's element type, count and elements into v; `name` ("key[2][0]") for messages.
    void read_array(Value& v, int depth, const std::string& name);
    void read_value(Value& v);
    void read_tensor_infos();
    void place_tensors();

    File& f_;
    const Limits& limits_;
    const std::byte* base_;
    std::uint64_t size_;
    std::uint64_t pos_ = 0;
    std::uint64_t tensor_count_ = 0, kv_count_ = 0;
};

inline void File::Parser::run() {
    read_header();
    read_metadata();
    read_tensor_infos();
    place_tensors();
}

inline void File::Parser::read_header() {
    if (size_ < 4) bad("the file has ", size_, " bytes, too short for the magic \"GGUF\"");
    if (std::memcmp(base_, "GGUF", 4) != 0) {
        const bool ggml = std::memcmp(base_, "lmgg", 4) == 0 || std::memcmp(base_, "fmgg", 4) == 0 ||
                          std::memcmp(base_, "tjgg", 4) == 0 || std::memcmp(base_, "algg", 4) == 0;
        bad("expected the magic \"GGUF\" at byte 0, found \"", detail::show_bytes(base_, 4), "\"",
            ggml ? " (a pre-GGUF ggml file; convert it to GGUF)" : " (not a GGUF file)");
    }
    pos_ = 4;
    const auto version = read<std::uint32_t>([] { return std::string("the version"); });
    if (version == 1)
        bad("version 1 is not supported (GGUF v1 used 32-bit counts; weft reads versions 2 and 3)");
    if (version != 2 && version != 3) {
        const std::uint32_t swapped = (version >> 24) | ((version >> 8) & 0xFF00u) | ((version << 8) & 0xFF0000u) | (version << 24);
        if (version != 0 && (version & 0xFFFF) == 0)
            bad("version field reads ", version, ", a byte-swapped ", swapped,
                ": the file is big-endian; weft reads little-endian GGUF");
        bad("version ", version, " is not supported; weft reads versions 2 and 3");
    }
    f_.version_ = version;
    tensor_count_ = read<std::uint64_t>([] { return std::string("the tensor count"); });
    kv_count_ = read<std::uint64_t>([] { return std::string("the metadata count"); });
    // Cheapest entries: an empty key, a type and a one-byte value (13 bytes); a name of length 0, no
    // dims, a type and an offset (24 bytes).
    need_items(kv_count_, 13, [] { return std::string("the metadata count"); });
    need_items(tensor_count_, 24, [] { return std::string("the tensor count"); });
    if (kv_count_ * 13 + tensor_count_ * 24 > size_ - pos_)
        bad("the header counts ", kv_count_, " metadata entries and ", tensor_count_, " tensors, but the ",
            size_ - pos_, " bytes left in the file cannot hold them");
}

inline void File::Parser::read_metadata() {
    f_.entries_.reserve(static_cast<std::size_t>(kv_count_));
    for (std::uint64_t i = 0; i < kv_count_; ++i) {
        const std::string_view key = read_string([&] { return "the key of metadata entry " + std::to_string(i); });
        Value v;
        v.key_ = key;
        v.shared_ = f_.shared_.get();
        const auto type = read<std::uint32_t>([&] { return "the value type of metadata '" + detail::short_text(key) + "'"; });
        if (!is_value_type(type)) bad("metadata '", detail::short_text(key), "' has value type ", type, ", which is not a GGUF type (0..12)");
        v.type_ = static_cast<ValueType>(type);
        read_value(v);
        const auto [it, inserted] = f_.entry_index_.emplace(key, f_.entries_.size());
        if (!inserted) bad("metadata key '", detail::short_text(key), "' appears twice (entries ", it->second, " and ", i, ")");
        f_.entries_.push_back({key, v});
    }

    // general.alignment: ggml reads it as a u32 and refuses zero and non-powers of two.
    if (const Value* a = f_.find("general.alignment")) {
        if (a->type() != ValueType::u32)
            bad("general.alignment is ", value_type_name(a->type()), ", expected u32");
        const auto alignment = a->as<std::uint32_t>();
        if (alignment == 0 || !std::has_single_bit(alignment))
            bad("general.alignment is ", alignment, ", expected a nonzero power of 2");
        f_.alignment_ = alignment;
    }
}

inline void File::Parser::read_value(Value& v) {
    const std::uint64_t start = pos_;
    v.data_ = base_ + pos_;
    const std::string name = detail::short_text(v.key_);
    if (v.type_ == ValueType::string) {
        read_string([&] { return "the string of metadata '" + name + "'"; });
    } else if (v.type_ == ValueType::array) {
        read_array(v, 0, name);
    } else {
        const std::size_t n = value_type_size(v.type_);
        need(n, [&] { return std::string("the ") + value_type_name(v.type_) + " of metadata '" + name + "'"; });
        if (v.type_ == ValueType::boolean && std::to_integer<unsigned>(base_[pos_]) > 1)
            bad("metadata '", name, "' is a bool stored as ", std::to_integer<unsigned>(base_[pos_]), ", expected 0 or 1");
        pos_ += n;
    }
    v.bytes_ = pos_ - start;
}

inline void File::Parser::read_array(Value& v, int depth, const std::string& name) {
    auto what = [&] { return "array '" + name + "'"; };
    const auto elem = read<std::uint32_t>([&] { return "the element type of " + what(); });
    if (!is_value_type(elem)) bad(what(), " has element type ", elem, ", which is not a GGUF type (0..12)");
    v.elem_type_ = static_cast<ValueType>(elem);
    v.count_ = read<std::uint64_t>([&] { return "the element count of " + what(); });
    if (v.elem_type_ == ValueType::array && depth + 2 > limits_.max_array_depth)
        bad(what(), " nests arrays ", depth + 2, " deep; the limit is ", limits_.max_array_depth, " (gguf::Limits::max_array_depth)");
    const std::uint64_t elems = pos_;

    if (const std::size_t size = value_type_size(v.elem_type_)) {
        need_items(v.count_, size, what);
        need(v.count_ * size, what);
        if (v.elem_type_ == ValueType::boolean)
            for (std::uint64_t j = 0; j < v.count_; ++j)
                if (std::to_integer<unsigned>(base_[pos_ + j]) > 1)
                    bad(what(), ": element ", j, " is a bool stored as ", std::to_integer<unsigned>(base_[pos_ + j]), ", expected 0 or 1");
        pos_ += v.count_ * size;
        return;
    }
    std::vector<std::uint64_t>& pool = f_.shared_->pool;
    v.pool_start_ = pool.size();
    if (v.elem_type_ == ValueType::string) {
        need_items(v.count_, 8, what);
        pool.reserve(pool.size() + static_cast<std::size_t>(v.count_));
        for (std::uint64_t j = 0; j < v.count_; ++j) {
            pool.push_back(pos_ - elems);
            read_string([&] { return "string " + std::to_string(j) + " of " + what(); });
        }
        return;
    }
    // Arrays of arrays: each element is an element type, a count and elements.
    need_items(v.count_, 12, what);
    pool.resize(pool.size() + 2 * static_cast<std::size_t>(v.count_));
    for (std::uint64_t j = 0; j < v.count_; ++j) {
        Value inner;
        inner.type_ = ValueType::array;
        inner.key_ = v.key_;
        inner.shared_ = v.shared_;
        pool[v.pool_start_ + 2 * j] = pos_ - elems;
        read_array(inner, depth + 1, name + "[" + std::to_string(j) + "]");
        pool[v.pool_start_ + 2 * j + 1] = inner.pool_start_;
    }
}

inline void File::Parser::read_tensor_infos() {
    f_.tensors_.reserve(static_cast<std::size_t>(tensor_count_));
    for (std::uint64_t i = 0; i < tensor_count_; ++i) {
        TensorInfo t;
        t.name = std::string(read_string([&] { return "the name of tensor " + std::to_string(i); }));
        auto what = [&] { return "tensor '" + detail::short_text(t.name) + "'"; };
        auto bad_tensor = [&](const auto&... parts) { bad("tensor '", detail::short_text(t.name), "': ", parts...); };
        const auto n_dims = read<std::uint32_t>([&] { return "the dimension count of " + what(); });
        if (n_dims > static_cast<std::uint32_t>(max_dims))
            bad_tensor("n_dims is ", n_dims, "; GGUF tensors have at most ", max_dims, " dimensions");
        need(8 * std::uint64_t(n_dims), [&] { return "the " + std::to_string(n_dims) + " dimensions of " + what(); });
        t.numel = 1;
        for (std::uint32_t d = 0; d < n_dims; ++d) {
            t.dims.push_back(detail::load<std::uint64_t>(base_ + pos_ + 8 * d));
            if (t.dims.back() > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
                bad_tensor("dimension ", d, " is ", t.dims.back(), ", more than a signed 64-bit count");
            if (!detail::checked_mul(t.numel, t.dims.back(), t.numel) || t.numel > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
                bad_tensor("dimensions ", detail::dims_text(t.dims), (d + 1 < n_dims ? "..." : ""),
                           " hold more elements than a signed 64-bit count");
        }
        pos_ += 8 * std::uint64_t(n_dims);
        std::vector<Index> torch(t.dims.rbegin(), t.dims.rend());
        t.shape = Shape(std::span<const Index>(torch));

        const auto type = read<std::uint32_t>([&] { return "the type of " + what(); });
        const GgmlTypeInfo* info = find_ggml_type(type);
        if (!info) {
            if (detail::is_removed_ggml_type(type))
                bad_tensor("ggml type ", type, " was removed from ggml and is no longer valid in GGUF files");
            bad_tensor("ggml type ", type, " is unknown (ggml's types: ", detail::known_ggml_types(), ")");
        }
        t.type = info->type;
        const std::uint64_t nbytes = detail::tensor_bytes(*info, t.dims, t.numel, bad_tensor);

        t.offset = read<std::uint64_t>([&] { return "the data offset of " + what(); });
        if (t.offset % f_.alignment_ != 0)
            bad_tensor("data offset ", t.offset, " is not a multiple of the alignment ", f_.alignment_);
        t.end = nbytes;  // the size, until place_tensors makes begin and end absolute
        const auto [it, inserted] = f_.tensor_index_.emplace(t.name, f_.tensors_.size());
        if (!inserted) bad("tensor '", detail::short_text(t.name), "' appears twice (tensor infos ", it->second, " and ", i, ")");
        f_.tensors_.push_back(std::move(t));
    }
}

inline void File::Parser::place_tensors() {
    const std::uint64_t a = f_.alignment_;
    const std::uint64_t infos_end = pos_;
    f_.data_offset_ = infos_end % a == 0 ? infos_end : infos_end + (a - infos_end % a);  // pos_ ≤ size, a ≤ 2^31: no overflow
    if (!f_.tensors_.empty() && f_.data_offset_ > size_)
        bad("the data section starts at byte ", f_.data_offset_, " (the tensor infos end at byte ", infos_end,
            ", aligned to ", a, "), but the file has ", size_, " bytes");
    for (TensorInfo& t : f_.tensors_) {
        const std::uint64_t nbytes = t.end;
        // data_offset_ <= size_ here (or there are no tensors).
        if (t.offset > size_ - f_.data_offset_ || nbytes > size_ - f_.data_offset_ - t.offset) {
            const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
            const bool beyond = t.offset > max - f_.data_offset_ || nbytes > max - f_.data_offset_ - t.offset;
            bad("tensor '", t.name, "' ends at byte ", beyond ? std::string("2^64 or more") : std::to_string(f_.data_offset_ + t.offset + nbytes),
                " but the file has ", size_, " (", ggml_type_name(t.type), " ", detail::dims_text(t.dims), ", ", nbytes,
                " bytes at data offset ", t.offset, "; the data section starts at byte ", f_.data_offset_, ")");
        }
        t.begin = f_.data_offset_ + t.offset;
        t.end = t.begin + nbytes;
    }
    // No two tensors may share bytes: one would alias the other.
    std::vector<const TensorInfo*> by_start;
    for (const TensorInfo& t : f_.tensors_)
        if (t.end > t.begin) by_start.push_back(&t);
    std::sort(by_start.begin(), by_start.end(), [](const TensorInfo* x, const TensorInfo* y) {
        return x->begin != y->begin ? x->begin < y->begin : x->end < y->end;
    });
    for (std::size_t i = 1; i < by_start.size(); ++i) {
        const TensorInfo& p = *by_start[i - 1];
        const TensorInfo& t = *by_start[i];
        if (t.begin < p.end)
            bad("tensor '", t.name, "' (bytes ", t.begin, "..", t.end, ") overlaps tensor '", p.name, "' (bytes ", p.begin,
                "..", p.end, ")");
    }
    // The mapping starts on a page boundary and the data section on a multiple of the alignment,
    // so with the usual alignment of 32 every tensor is aligned for its element type. A file with
    // alignment 1, 2 or 4 may leave one misaligned; such a tensor is copied once into aligned memory
    // (kernels assume element alignment); every other tensor is used in place.
    f_.data_.reserve(f_.tensors_.size());
    for (const TensorInfo& t : f_.tensors_) {
        const std::byte* p = base_ + t.begin;
        const std::optional<DType> d = to_dtype(t.type);
        const std::size_t need_align = !d ? 1 : is_quantized(*d) ? 2 : dtype_size(*d);
        if (t.begin % need_align != 0 && t.end > t.begin) {
            AlignedBuffer& copy = f_.copies_.emplace_back(static_cast<std::size_t>(t.nbytes()));
            std::memcpy(copy.data(), p, static_cast<std::size_t>(t.nbytes()));
            p = copy.data();
        }
        f_.data_.push_back(p);
    }
}

inline File::File(const std::string& path, const Limits& limits, FileLoad how)
    : map_(path, how), shared_(std::make_unique<detail::Shared>()) {
    shared_->origin = "gguf: " + path + ": ";
    Parser(*this, limits).run();
}

inline const Value* File::find(std::string_view key) const {
    const auto it = entry_index_.find(key);
    return it == entry_index_.end() ? nullptr : &entries_[it->second].value;
}

inline const Value& File::value(std::string_view key) const {
    const Value* v = find(key);
    if (!v) fail_here("no metadata key '", key, "'");
    return *v;
}

inline const TensorInfo* File::find_tensor(std::string_view name) const {
    const auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

inline const TensorInfo& File::tensor(std::string_view name) const {
    const TensorInfo* t = find_tensor(name);
    if (!t) fail("gguf: no tensor '", name, "' in ", path());
    return *t;
}

inline std::span<const std::byte> File::tensor_bytes(std::string_view name) const {
    const TensorInfo& t = tensor(name);
    return {data_[static_cast<std::size_t>(&t - tensors_.data())], static_cast<std::size_t>(t.nbytes())};
}

inline Weight File::weight(std::string_view name) const {
    const TensorInfo& t = tensor(name);
    const std::optional<DType> d = to_dtype(t.type);
    if (!d)
        fail_here("tensor '", name, "' is ", ggml_type_name(t.type),
                  ", which weft cannot compute with (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, I8, I32 and F64)");
    return Weight(*d, data_[static_cast<std::size_t>(&t - tensors_.data())], t.shape, t.name);
}

// ---- encoding ------------------------------------------------------------------------------

namespace detail {
template <class T> void append(std::string& out, const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}
inline void append_string(std::string& out, std::string_view s) {
    append(out, static_cast<std::uint64_t>(s.size()));
    out.append(s);
}
}  // namespace detail

template <class T> requires std::is_arithmetic_v<T> EncodedValue encode(T value) {
    EncodedValue e{value_type_of<T>(), {}};
    if constexpr (std::is_same_v<T, bool>) e.bytes.push_back(value ? '\1' : '\0');
    else detail::append(e.bytes, value);
    return e;
}

inline EncodedValue encode(std::string_view s) {
    EncodedValue e{ValueType::string, {}};
    detail::append_string(e.bytes, s);
    return e;
}

template <std::ranges::input_range R> EncodedValue encode_array(const R& values) {
    using T = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    EncodedValue e{ValueType::array, {}};
    std::string elems;
    std::uint64_t count = 0;
    ValueType elem_type;
    if constexpr (std::is_same_v<T, EncodedValue>) {
        elem_type = ValueType::array;  // an empty array of encoded values is an empty array of arrays
        bool first = true;
        for (const EncodedValue& v : values) {
            if (first) elem_type = v.type;
            else if (v.type != elem_type)
                fail("gguf: encode_array: element ", count, " is ", value_type_name(v.type), " but element 0 is ",
                     value_type_name(elem_type), " (a GGUF array holds one type)");
            first = false;
            elems += v.bytes;
            ++count;
        }
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        elem_type = ValueType::string;
        for (const auto& s : values) {
            detail::append_string(elems, std::string_view(s));
            ++count;
        }
    } else {
        elem_type = value_type_of<T>();
        for (const auto& x : values) {
            const T v = x;
            if constexpr (std::is_same_v<T, bool>) elems.push_back(v ? '\1' : '\0');
            else detail::append(elems, v);
            ++count;
        }
    }
    detail::append(e.bytes, static_cast<std::uint32_t>(elem_type));
    detail::append(e.bytes, count);
    e.bytes += elems;
    return e;
}

// ---- Writer --------------------------------------------------------------------------------

inline void Writer::add(std::string key, EncodedValue value) {
    for (const auto& [k, v] : kv_)
        if (k == key) fail("gguf::Writer: metadata key '", key, "' was already added");
    if (key == "general.alignment") {
        if (value.type != ValueType::u32) fail("gguf::Writer: general.alignment must be a u32, got ", value_type_name(value.type));
        std::uint32_t a = 0;
        std::memcpy(&a, value.bytes.data(), 4);
        if (a == 0 || !std::has_single_bit(a)) fail("gguf::Writer: general.alignment must be a nonzero power of 2, got ", a);
        alignment_ = a;
    }
    kv_.emplace_back(std::move(key), std::move(value));
}

inline std::uint64_t Writer::tensor_nbytes(std::string_view name, GgmlType type, const Shape& shape) {
    auto bad = [&](const auto&... parts) { fail("gguf::Writer: tensor '", name, "': ", parts...); };
    const GgmlTypeInfo& info = ggml_type_info(type);
    if (shape.rank() > max_dims) bad("shape ", shape, " has ", shape.rank(), " axes; GGUF tensors have at most ", max_dims);
    std::vector<std::uint64_t> dims;
    std::uint64_t numel = 1;
    for (int i = shape.rank() - 1; i >= 0; --i) {
        if (shape[i] < 0) bad("shape ", shape, " has a negative size");
        dims.push_back(static_cast<std::uint64_t>(shape[i]));
        if (!detail::checked_mul(numel, dims.back(), numel)) bad("shape ", shape, " has more elements than 64 bits can count");
    }
    return detail::tensor_bytes(info, dims, numel, bad);
}

inline void Writer::add_tensor(std::string name, GgmlType type, const Shape& shape, Source source) {
    for (const Pending& t : tensors_)
        if (t.name == name) fail("gguf::Writer: tensor '", name, "' was already added");
    const std::uint64_t nbytes = tensor_nbytes(name, type, shape);
    tensors_.push_back({std::move(name), type, shape, nbytes, std::move(source)});
}

inline void Writer::add_tensor(std::string name, GgmlType type, const Shape& shape, std::span<const std::byte> bytes) {
    const std::uint64_t nbytes = tensor_nbytes(name, type, shape);
    if (bytes.size() != nbytes)
        fail("gguf::Writer: tensor '", name, "': ", bytes.size(), " bytes given, but ", ggml_type_name(type), " ", shape,
             " takes ", nbytes);
    add_tensor(std::move(name), type, shape, [bytes](const Sink& sink) { sink(bytes); });
}

inline void Writer::add_tensor(std::string name, const Weight& w) {
    const GgmlType type = to_ggml(w.dtype);
    const std::uint64_t nbytes = tensor_nbytes(name, type, w.shape);
    add_tensor(std::move(name), type, w.shape, std::span<const std::byte>(w.data, static_cast<std::size_t>(nbytes)));
}

inline void Writer::write(std::ostream& out) const {
    std::uint64_t pos = 0;
    auto put = [&](const void* p, std::size_t n) {
        out.write(static_cast<const char*>(p), static_cast<std::streamsize>(n));
        if (!out) fail("gguf::Writer: writing failed at byte ", pos);
        pos += n;
    };
    auto put_u32 = [&](std::uint32_t v) { put(&v, 4); };
    auto put_u64 = [&](std::uint64_t v) { put(&v, 8); };
    auto put_string = [&](std::string_view s) { put_u64(s.size()); put(s.data(), s.size()); };
    const std::uint64_t a = alignment_;
    auto pad = [&] {
        static const char zeros[256] = {};
        while (pos % a != 0) put(zeros, static_cast<std::size_t>(std::min<std::uint64_t>(a - pos % a, sizeof zeros)));
    };

    put("GGUF", 4);
    put_u32(3);
    put_u64(tensors_.size());
    put_u64(kv_.size());
    for (const auto& [key, value] : kv_) {
        put_string(key);
        put_u32(static_cast<std::uint32_t>(value.type));
        put(value.bytes.data(), value.bytes.size());
    }
    std::uint64_t offset = 0;
    for (const Pending& t : tensors_) {
        put_string(t.name);
        put_u32(static_cast<std::uint32_t>(t.shape.rank()));
        for (int i = t.shape.rank() - 1; i >= 0; --i) put_u64(static_cast<std::uint64_t>(t.shape[i]));
        put_u32(static_cast<std::uint32_t>(t.type));
        put_u64(offset);
        offset += t.nbytes + (a - t.nbytes % a) % a;
    }
    pad();
    for (const Pending& t : tensors_) {
        std::uint64_t written = 0;
        t.source([&](std::span<const std::byte> piece) {
            if (piece.size() > t.nbytes - written)
                fail("gguf::Writer: the source of tensor '", t.name, "' wrote more than its ", t.nbytes, " bytes");
            put(piece.data(), piece.size());
            written += piece.size();
        });
        if (written != t.nbytes)
            fail("gguf::Writer: the source of tensor '", t.name, "' wrote ", written, " bytes, expected ", t.nbytes);
        pad();
    }
    out.flush();
    if (!out) fail("gguf::Writer: writing failed at byte ", pos);
}

inline void Writer::write(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) fail("gguf::Writer: cannot create '", path, "'");
    try {
        write(out);
        out.close();
        if (!out) fail("gguf::Writer: cannot finish writing '", path, "'");
    } catch (...) {
        // No half-written file is left behind to be mistaken for a model.
        out.close();
        std::error_code ec;
        std::filesystem::remove(path, ec);
        throw;
    }
}

}  // namespace weft::gguf
