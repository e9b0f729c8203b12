// fuzz/fuzz_gguf.cpp — libFuzzer target for weft::gguf::File (io/gguf.hpp) and the tokenizer a GGUF
// file carries (text/load.hpp). Every input is a whole .gguf file. A bad file must end in
// weft::Error (any other exception, a crash or a sanitizer report is a bug). A file the reader
// accepts must keep the reader's promises:
//   - header: version 2 or 3, a power-of-2 alignment, the data section aligned and inside the file;
//   - metadata: every key found again by find(), every value's bytes inside the file; every typed
//     accessor (as<T>, get/get_or/get_optional, array<T>, at(i), nested arrays) either answers or
//     throws weft::Error, and the typed and untyped views of an array agree;
//   - tensors: inside the data section, aligned as stored, no two sharing bytes, the byte count
//     their ggml type and dims need; tensor_bytes() and weight() point at exactly those bytes;
//   - the file parses again under Limits{max_metadata_bytes = data_offset()} (the limit counts only
//     what lies before the data section);
//   - gguf::Writer, given every key and tensor of the file, writes a file that reads back with the
//     same values and tensor bytes;
//   - a tokenizer in the metadata (tokenizer.ggml.*) is either refused with weft::Error or encodes
//     and decodes: ids inside the vocabulary, StreamDecoder's text equal to decode()'s.
#include <weft/io/gguf.hpp>
#include <weft/text/load.hpp>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_input_file.hpp"
#include "fuzz_tokenizer_checks.hpp"

namespace {

namespace gguf = weft::gguf;

// True if [p, p + n) lies inside `bytes`.
bool inside(std::span<const std::byte> bytes, const std::byte* p, std::size_t n) {
    return p >= bytes.data() && p <= bytes.data() + bytes.size() && n <= static_cast<std::size_t>(bytes.data() + bytes.size() - p);
}

// Calls f(); a weft::Error is an allowed answer (a type mismatch, a value that does not fit).
template <class F> void allowed_to_throw(F&& f) {
    try {
        f();
    } catch (const weft::Error&) {
    }
}

template <class T> void scalar_as(const gguf::Value& v) {
    allowed_to_throw([&] { (void)v.as<T>(); });
}

// Every element of an array through array<T>(), compared with at(i).as<T>() on a sample.
template <class T> void typed_elements(const gguf::Value& v) {
    const gguf::ArrayView<T> a = v.array<T>();
    WEFT_FUZZ_CHECK(a.size() == v.size());
    std::size_t i = 0;
    for (T x : a) {
        if (i < 64) {
            const T y = v.at(i).as<T>();
            if constexpr (std::is_floating_point_v<T>) WEFT_FUZZ_CHECK(std::memcmp(&x, &y, sizeof x) == 0);
            else WEFT_FUZZ_CHECK(x == y);
        }
        ++i;
    }
    WEFT_FUZZ_CHECK(i == a.size());
    if (a.size() > 0) (void)a.at(a.size() - 1);
    allowed_to_throw([&] { (void)a.at(a.size()); });
}

// Visits a value and (within `budget` values) its elements. The first `thorough` scalars get every
// as<T>, most of which throw; exceptions are slow under ASan, so the rest get only the reads that
// match their type.
void visit(const gguf::File& file, const gguf::Value& v, int depth, std::size_t& budget, std::size_t& thorough) {
    WEFT_FUZZ_CHECK(depth <= 16);
    WEFT_FUZZ_CHECK(inside(file.bytes(), v.payload().data(), v.payload().size()));
    if (budget == 0) return;
    --budget;
    if (!v.is_array() && thorough == 0) {
        if (v.type() == gguf::ValueType::string) WEFT_FUZZ_CHECK(v.as<std::string_view>().size() + 8 == v.payload().size());
        else if (v.type() == gguf::ValueType::boolean) (void)v.as<bool>();
        else if (v.type() == gguf::ValueType::f32) (void)v.as<float>();
        else if (v.type() == gguf::ValueType::f64) (void)v.as<double>();
        else if (gguf::value_type_size(v.type()) == 8) allowed_to_throw([&] { (void)v.as<std::int64_t>(); });
        else (void)v.as<std::int64_t>();  // integers up to 32 bits always fit
        return;
    }
    if (!v.is_array()) {
        --thorough;
        WEFT_FUZZ_CHECK(gguf::is_value_type(static_cast<std::uint32_t>(v.type())));
        scalar_as<bool>(v);
        scalar_as<std::uint8_t>(v);
        scalar_as<std::int8_t>(v);
        scalar_as<std::uint16_t>(v);
        scalar_as<std::int16_t>(v);
        scalar_as<std::uint32_t>(v);
        scalar_as<std::int32_t>(v);
        scalar_as<std::uint64_t>(v);
        scalar_as<std::int64_t>(v);
        scalar_as<float>(v);
        scalar_as<double>(v);
        if (v.type() == gguf::ValueType::string) {
            const std::string_view s = v.as<std::string_view>();
            WEFT_FUZZ_CHECK(s.size() + 8 == v.payload().size());
            WEFT_FUZZ_CHECK(v.as<std::string>() == s);
        } else {
            WEFT_FUZZ_CHECK(v.payload().size() == gguf::value_type_size(v.type()));
            allowed_to_throw([&] { (void)v.as<std::string>(); });
            if (gguf::is_integer(v.type())) {
                // Any integer reads as i64 or u64 (or both, equal when both succeed).
                std::optional<std::int64_t> s;
                std::optional<std::uint64_t> u;
                allowed_to_throw([&] { s = v.as<std::int64_t>(); });
                allowed_to_throw([&] { u = v.as<std::uint64_t>(); });
                WEFT_FUZZ_CHECK(s || u);
                if (s && u) WEFT_FUZZ_CHECK(*s >= 0 && static_cast<std::uint64_t>(*s) == *u);
            }
        }
        allowed_to_throw([&] { (void)v.size(); });  // not an array: throws
        return;
    }
    const gguf::ValueType e = v.element_type();
    WEFT_FUZZ_CHECK(gguf::is_value_type(static_cast<std::uint32_t>(e)));
    const std::uint64_t n = v.size();
    const std::size_t fixed = gguf::value_type_size(e);
    WEFT_FUZZ_CHECK(v.payload().size() >= 12);
    if (fixed) WEFT_FUZZ_CHECK(v.payload().size() == 12 + n * fixed);
    else WEFT_FUZZ_CHECK(n <= (v.payload().size() - 12) / 8);
    switch (e) {
        case gguf::ValueType::u8: typed_elements<std::uint8_t>(v); break;
        case gguf::ValueType::i8: typed_elements<std::int8_t>(v); break;
        case gguf::ValueType::u16: typed_elements<std::uint16_t>(v); break;
        case gguf::ValueType::i16: typed_elements<std::int16_t>(v); break;
        case gguf::ValueType::u32: typed_elements<std::uint32_t>(v); break;
        case gguf::ValueType::i32: typed_elements<std::int32_t>(v); break;
        case gguf::ValueType::u64: typed_elements<std::uint64_t>(v); break;
        case gguf::ValueType::i64: typed_elements<std::int64_t>(v); break;
        case gguf::ValueType::f32: typed_elements<float>(v); break;
        case gguf::ValueType::f64: typed_elements<double>(v); break;
        case gguf::ValueType::boolean: typed_elements<bool>(v); break;
        case gguf::ValueType::string: {
            const gguf::ArrayView<std::string_view> a = v.array<std::string_view>();
            for (std::size_t i = 0; i < a.size(); ++i) {
                const std::string_view s = a[i];
                WEFT_FUZZ_CHECK(inside(file.bytes(), reinterpret_cast<const std::byte*>(s.data()), s.size()));
                if (i < 64) WEFT_FUZZ_CHECK(v.at(i).as<std::string_view>() == s);
            }
            break;
        }
        case gguf::ValueType::array: break;
    }
    if (thorough > 0) {  // the wrong element type and an index past the end are refused
        --thorough;
        allowed_to_throw([&] { (void)v.array<std::uint8_t>(); });
        allowed_to_throw([&] { (void)v.array<std::string_view>(); });
        allowed_to_throw([&] { (void)v.at(n); });
    }
    for (std::uint64_t i = 0; i < n && budget > 0; ++i) visit(file, v.at(i), depth + 1, budget, thorough);
}

void check_tensors(const gguf::File& file) {
    const std::uint64_t size = file.bytes().size();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (const gguf::TensorInfo& t : file.tensors()) {
        WEFT_FUZZ_CHECK(file.find_tensor(t.name) == &t);
        WEFT_FUZZ_CHECK(t.dims.size() <= static_cast<std::size_t>(gguf::max_dims));
        WEFT_FUZZ_CHECK(t.shape.rank() == static_cast<int>(t.dims.size()));
        std::uint64_t numel = 1;
        bool zero = false;
        for (std::size_t d = 0; d < t.dims.size(); ++d) {
            WEFT_FUZZ_CHECK(static_cast<std::uint64_t>(t.shape[static_cast<int>(t.dims.size() - 1 - d)]) == t.dims[d]);
            zero = zero || t.dims[d] == 0;
            numel *= t.dims[d];  // wraps only if some dim is 0, and then numel is 0 below
        }
        WEFT_FUZZ_CHECK(t.numel == (zero ? 0 : numel));
        const gguf::GgmlTypeInfo& info = gguf::ggml_type_info(t.type);
        const std::uint64_t row = t.dims.empty() ? 1 : t.dims[0];
        WEFT_FUZZ_CHECK(row % info.block_size == 0);
        WEFT_FUZZ_CHECK(t.nbytes() == t.numel / info.block_size * info.block_bytes);
        WEFT_FUZZ_CHECK(t.offset % file.alignment() == 0);
        WEFT_FUZZ_CHECK(t.begin == file.data_offset() + t.offset);
        WEFT_FUZZ_CHECK(t.begin <= t.end && t.end <= size);
        if (t.end > t.begin) ranges.emplace_back(t.begin, t.end);

        const std::span<const std::byte> bytes = file.tensor_bytes(t.name);
        WEFT_FUZZ_CHECK(bytes.size() == t.nbytes());
        if (!bytes.empty()) WEFT_FUZZ_CHECK(std::memcmp(bytes.data(), file.bytes().data() + t.begin, bytes.size()) == 0);
        if (const std::optional<weft::DType> d = gguf::to_dtype(t.type)) {
            const weft::Weight w = file.weight(t.name);
            WEFT_FUZZ_CHECK(w.dtype == *d && w.shape == t.shape && w.name == t.name);
            WEFT_FUZZ_CHECK(w.data == bytes.data());
            const std::size_t align = weft::is_quantized(*d) ? 2 : weft::dtype_size(*d);
            if (!bytes.empty()) WEFT_FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(w.data) % align == 0);
            allowed_to_throw([&] { (void)w.row_bytes(); });
        } else {
            bool refused = false;  // a type weft cannot compute with
            try {
                (void)file.weight(t.name);
            } catch (const weft::Error&) {
                refused = true;
            }
            WEFT_FUZZ_CHECK(refused);
        }
        allowed_to_throw([&] { (void)t.shape.numel(); });
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i) WEFT_FUZZ_CHECK(ranges[i].first >= ranges[i - 1].second);
}

// Writes every key and tensor of `file` with gguf::Writer, reads the result back, compares.
void check_rewrite(const gguf::File& file) {
    gguf::Writer w;
    for (const gguf::File::Entry& e : file.metadata()) w.add(std::string(e.key), e.value);
    for (const gguf::TensorInfo& t : file.tensors()) w.add_tensor(t.name, t.type, t.shape, file.tensor_bytes(t.name));
    std::ostringstream out;
    w.write(out);
    const std::string bytes = out.str();
    static weft_fuzz::InputFile second;
    const gguf::File back(second.write(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    WEFT_FUZZ_CHECK(back.version() == 3);
    WEFT_FUZZ_CHECK(back.alignment() == file.alignment());
    WEFT_FUZZ_CHECK(back.metadata().size() == file.metadata().size());
    for (std::size_t i = 0; i < file.metadata().size(); ++i) {
        const gguf::File::Entry& a = file.metadata()[i];
        const gguf::File::Entry& b = back.metadata()[i];
        WEFT_FUZZ_CHECK(a.key == b.key && a.value.type() == b.value.type());
        WEFT_FUZZ_CHECK(a.value.payload().size() == b.value.payload().size());
        WEFT_FUZZ_CHECK(std::memcmp(a.value.payload().data(), b.value.payload().data(), a.value.payload().size()) == 0);
    }
    WEFT_FUZZ_CHECK(back.tensors().size() == file.tensors().size());
    for (std::size_t i = 0; i < file.tensors().size(); ++i) {
        const gguf::TensorInfo& a = file.tensors()[i];
        const gguf::TensorInfo& b = back.tensors()[i];
        WEFT_FUZZ_CHECK(a.name == b.name && a.type == b.type && a.dims == b.dims);
        const auto x = file.tensor_bytes(a.name), y = back.tensor_bytes(b.name);
        WEFT_FUZZ_CHECK(x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0));
    }
}

void check_tokenizer(const gguf::File& file) {
    std::optional<weft::text::Tokenizer> tok;
    try {
        tok.emplace(weft::text::vocabulary_from_gguf(file), file.path());
    } catch (const weft::Error&) {
        return;
    }
    weft_fuzz::check_tokenizer_basics(*tok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static weft_fuzz::InputFile input;
    const std::string& path = input.write(data, size);
    try {
        const gguf::File file(path);
        WEFT_FUZZ_CHECK(file.bytes().size() == size);
        WEFT_FUZZ_CHECK(file.version() == 2 || file.version() == 3);
        WEFT_FUZZ_CHECK(file.alignment() > 0 && std::has_single_bit(file.alignment()));
        WEFT_FUZZ_CHECK(file.data_offset() % file.alignment() == 0);
        if (!file.tensors().empty()) WEFT_FUZZ_CHECK(file.data_offset() <= size);

        std::size_t budget = 4096, thorough = 64;  // values visited, so a file of many tiny arrays stays fast
        for (const gguf::File::Entry& e : file.metadata()) {
            WEFT_FUZZ_CHECK(file.find(e.key) == &e.value);
            WEFT_FUZZ_CHECK(e.value.key() == e.key);
            WEFT_FUZZ_CHECK(inside(file.bytes(), reinterpret_cast<const std::byte*>(e.key.data()), e.key.size()));
            visit(file, e.value, 0, budget, thorough);
            if (thorough > 0) {
                allowed_to_throw([&] { (void)file.get<std::uint32_t>(e.key); });
                allowed_to_throw([&] { (void)file.get_or<std::string>(e.key, "x"); });
                allowed_to_throw([&] { (void)file.get_optional<float>(e.key); });
                allowed_to_throw([&] { (void)file.get_array<std::string_view>(e.key); });
            }
            const gguf::EncodedValue enc = gguf::encode(e.value);
            WEFT_FUZZ_CHECK(enc.type == e.value.type() && enc.bytes.size() == e.value.payload().size());
        }
        WEFT_FUZZ_CHECK(!file.get_or<bool>("weft.fuzz.absent", false));
        allowed_to_throw([&] { (void)file.value("weft.fuzz.absent"); });
        check_tensors(file);

        // The limit counts the bytes before the data section only.
        const gguf::File again(path, gguf::Limits{file.data_offset(), 8});
        WEFT_FUZZ_CHECK(again.metadata().size() == file.metadata().size() && again.tensors().size() == file.tensors().size());

        check_rewrite(file);
        check_tokenizer(file);
    } catch (const weft::Error&) {
        // A refused file: the expected outcome for almost every input.
    }
    return 0;
}
