// weft/io/safetensors.hpp — reads Hugging Face .safetensors files: one memory-mapped file (File)
// or a whole checkpoint directory with its shard index (Checkpoint). Sits on core/storage.hpp
// (MappedFile) and hands out core/weight.hpp Weights that point into the mapping, zero-copy.
//
// Format: u64 little-endian header length N, N bytes of JSON, then the data buffer. Every header
// entry is {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the buffer;
// the optional "__metadata__" is a string → string object. Nothing in the header is trusted: every
// number is checked, with overflow-safe arithmetic, before any pointer is formed from it.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "weft/core/dtype.hpp"
#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/weight.hpp"

namespace weft::safetensors {

static_assert(std::endian::native == std::endian::little,
              "weft: safetensors data is little-endian and weft uses it in place, so it needs a little-endian host");

// One tensor as the header describes it, after validation.
struct TensorInfo {
    std::string name;
    DType dtype = DType::f32;
    Shape shape;                 // PyTorch order
    std::uint64_t begin = 0;     // absolute byte offsets in the file: [begin, end)
    std::uint64_t end = 0;
};

struct Limits {
    // The reference implementation refuses headers above 100 MB; a lying length field must not
    // make us parse (or allocate for) gigabytes of "JSON".
    std::uint64_t max_header_bytes = 100'000'000;
};

// One memory-mapped (or copied: FileLoad) .safetensors file, validated in full by the constructor.
class File {
public:
    explicit File(const std::string& path, const Limits& limits = {}, FileLoad how = file_load());

    const std::string& path() const { return map_.path(); }
    // In the order their data lies in the file.
    const std::vector<TensorInfo>& tensors() const { return tensors_; }
    // nullptr if the file has no tensor of that name.
    const TensorInfo* find(std::string_view name) const;
    // Throws naming the file and the tensor if absent.
    Weight weight(std::string_view name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    // The whole file, header included.
    std::span<const std::byte> bytes() const { return map_.bytes(); }

private:
    friend class Checkpoint;
    Weight weight_at(std::size_t i) const {
        const TensorInfo& t = tensors_[i];
        return Weight(t.dtype, data_[i], t.shape, t.name);
    }
    [[noreturn]] void fail_here(const auto&... parts) const { fail("safetensors: ", path(), ": ", parts...); }
    void parse_header(std::string_view header, std::uint64_t data_size);
    void check_tiling(std::uint64_t data_start, std::uint64_t data_size);
    void place_data();

    MappedFile map_;
    std::vector<TensorInfo> tensors_;
    std::vector<const std::byte*> data_;                     // per tensor, parallel to tensors_
    std::map<std::string, std::size_t, std::less<>> index_;  // name → position in tensors_
    std::map<std::string, std::string> metadata_;
    std::vector<AlignedBuffer> copies_;                      // see place_data
};

// A Hugging Face model's weights: a directory holding model.safetensors, or
// model.safetensors.index.json and the shards it names; or the path of one .safetensors file
// (or of an index file). Each shard is mapped once; Weights point into the mappings.
class Checkpoint {
public:
    explicit Checkpoint(const std::string& path_or_dir, const Limits& limits = {});

    bool contains(std::string_view name) const { return entries_.find(name) != entries_.end(); }
    // Throws "safetensors: no tensor 'x' in <path>" if absent.
    Weight weight(std::string_view name) const;
    // Every tensor name, sorted.
    std::vector<std::string> names() const;
    // Total size of the mapped files.
    std::uint64_t mapped_bytes() const;
    const std::vector<std::unique_ptr<File>>& files() const { return files_; }

private:
    void load_index(const std::filesystem::path& index_path, const Limits& limits);
    void add_all(const File& f);

    struct Entry {
        const File* file;   // owned by files_ (heap-allocated, so stable across moves)
        std::size_t index;  // into file->tensors()
    };
    std::string origin_;
    std::vector<std::unique_ptr<File>> files_;
    std::map<std::string, Entry, std::less<>> entries_;
};

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

using json = nlohmann::json;

inline std::uint64_t read_u64_le(const std::byte* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
    return v;
}

// Parses JSON and reports the first key that appears twice in one object. nlohmann (like most
// JSON libraries) silently keeps the last duplicate, so a header could show one reader a tensor
// and another reader a different one; we refuse such files instead.
struct ParsedJson {
    json value;
    std::string duplicate_key;  // empty if none
    bool duplicate_at_top = false;
};

// `what` names the text in errors: "safetensors: model.safetensors: the 812-byte header".
inline ParsedJson parse_json_checking_duplicates(std::string_view text, const std::string& what) {
    // nlohmann stops at a NUL byte as if the input ended there, which would let a file hide bytes
    // after one; JSON text never holds a raw NUL, so refuse it first.
    if (const auto z = text.find('\0'); z != std::string_view::npos)
        fail(what, " is not valid JSON: it holds a NUL byte at offset ", z, " (padding must be spaces)");
    ParsedJson out;
    std::vector<std::set<std::string>> open;  // keys seen so far, one set per open object
    auto on_event = [&](int, json::parse_event_t event, json& parsed) -> bool {
        switch (event) {
            case json::parse_event_t::object_start: open.emplace_back(); break;
            case json::parse_event_t::object_end: if (!open.empty()) open.pop_back(); break;
            case json::parse_event_t::key:
                if (!open.empty() && !open.back().insert(parsed.get<std::string>()).second &&
                    out.duplicate_key.empty()) {
                    out.duplicate_key = parsed.get<std::string>();
                    out.duplicate_at_top = open.size() == 1;
                }
                break;
            default: break;
        }
        return true;
    };
    try {
        out.value = json::parse(text.begin(), text.end(), on_event);
    } catch (const json::exception& e) {
        fail(what, " is not valid JSON: ", e.what());
    }
    return out;
}

// A JSON value for an error message, shortened so a lying file cannot flood the message.
inline std::string show(const json& v) {
    std::string s = v.dump();
    if (s.size() > 80) s = s.substr(0, 77) + "...";
    return s;
}

inline bool parse_dtype(const std::string& s, DType& out) {
    if (s == "F32") out = DType::f32;
    else if (s == "F16") out = DType::f16;
    else if (s == "BF16") out = DType::bf16;
    else return false;
    return true;
}

inline const char* safetensors_dtype_name(DType t) {
    switch (t) {
        case DType::f16: return "F16";
        case DType::bf16: return "BF16";
        default: return "F32";
    }
}

// a * b, or false if it overflows 64 bits.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
}

inline std::string shape_text(const std::vector<std::uint64_t>& dims) {
    std::string s = "[";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

}  // namespace detail

// ---- File ----------------------------------------------------------------------------------

inline File::File(const std::string& path, const Limits& limits, FileLoad how) : map_(path, how) {
    const std::uint64_t size = map_.size();
    if (size < 8)
        fail_here("the file has ", size, " bytes, too short for the 8-byte header length");
    const std::uint64_t n = detail::read_u64_le(map_.data());
    if (n > limits.max_header_bytes)
        fail_here("header length ", n, " exceeds the limit of ", limits.max_header_bytes, " bytes");
    if (n > size - 8)
        fail_here("header length ", n, " runs past the end of the file (", size - 8,
                  " bytes follow the length field)");
    const std::uint64_t data_start = 8 + n, data_size = size - data_start;
    parse_header(std::string_view(reinterpret_cast<const char*>(map_.data()) + 8, static_cast<std::size_t>(n)),
                 data_size);
    check_tiling(data_start, data_size);
    place_data();
}

inline void File::parse_header(std::string_view header, std::uint64_t data_size) {
    using detail::json;
    using detail::show;
    const detail::ParsedJson parsed = detail::parse_json_checking_duplicates(
        header, weft::detail::concat("safetensors: ", path(), ": the ", header.size(), "-byte header"));
    if (!parsed.duplicate_key.empty()) {
        if (parsed.duplicate_at_top) fail_here("the header names '", parsed.duplicate_key, "' twice");
        fail_here("an object in the header has the key '", parsed.duplicate_key, "' twice");
    }
    const json& root = parsed.value;
    if (!root.is_object()) fail_here("the header is a JSON ", root.type_name(), ", expected an object");

    for (const auto& item : root.items()) {
        // (not a structured binding: lambdas below capture the name, which clang < 16 refuses)
        const std::string& name = item.key();
        const auto& entry = item.value();
        if (name == "__metadata__") {
            // The reference reader takes null as "no metadata"; anything else must be string → string.
            if (entry.is_null()) continue;
            if (!entry.is_object()) fail_here("__metadata__ is a JSON ", entry.type_name(), ", expected an object of strings");
            for (const auto& [key, value] : entry.items()) {
                if (!value.is_string())
                    fail_here("__metadata__ '", key, "' is ", show(value), ", expected a string");
                metadata_.emplace(key, value.get<std::string>());
            }
            continue;
        }
        auto bad = [&](const auto&... parts) { fail_here("tensor '", name, "': ", parts...); };
        if (!entry.is_object())
            bad("the entry is ", show(entry), ", expected an object with dtype, shape and data_offsets");
        // Keys other than these three are ignored, as the reference reader ignores them.
        const auto dtype_it = entry.find("dtype"), shape_it = entry.find("shape"), offsets_it = entry.find("data_offsets");
        if (dtype_it == entry.end()) bad("the entry has no 'dtype'");
        if (shape_it == entry.end()) bad("the entry has no 'shape'");
        if (offsets_it == entry.end()) bad("the entry has no 'data_offsets'");

        TensorInfo info;
        info.name = name;
        if (!dtype_it->is_string()) bad("dtype is ", show(*dtype_it), ", expected a string such as \"BF16\"");
        if (!detail::parse_dtype(dtype_it->get<std::string>(), info.dtype))
            bad("dtype ", show(*dtype_it), " is not supported; weft reads F32, F16 and BF16");

        if (!shape_it->is_array()) bad("shape is ", show(*shape_it), ", expected an array of sizes");
        if (shape_it->size() > static_cast<std::size_t>(max_rank))
            bad("shape has ", shape_it->size(), " axes; weft tensors have at most ", max_rank);
        std::vector<std::uint64_t> dims;
        std::uint64_t numel = 1;
        for (std::size_t i = 0; i < shape_it->size(); ++i) {
            const json& d = (*shape_it)[i];
            // nlohmann stores non-negative integer literals as unsigned; negative ones as signed,
            // fractions and out-of-range literals as floats.
            if (!d.is_number_unsigned())
                bad("size ", show(d), " on axis ", i, " of shape ", show(*shape_it), " is not a non-negative integer");
            const std::uint64_t v = d.get<std::uint64_t>();
            if (v > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
                bad("size ", v, " on axis ", i, " does not fit a 64-bit signed index");
            dims.push_back(v);
            if (!detail::checked_mul(numel, v, numel))
                bad("shape ", detail::shape_text(dims), "... has more elements than 64 bits can count");
        }
        std::uint64_t nbytes = 0;
        if (!detail::checked_mul(numel, dtype_size(info.dtype), nbytes))
            bad("shape ", detail::shape_text(dims), " of ", detail::safetensors_dtype_name(info.dtype),
                " needs more bytes than 64 bits can count");
        std::vector<Index> sdims(dims.begin(), dims.end());
        info.shape = Shape(std::span<const Index>(sdims));

        const json& off = *offsets_it;
        if (!off.is_array() || off.size() != 2)
            bad("data_offsets is ", show(off), ", expected [begin, end]");
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            bad("data_offsets ", show(off), " are not two non-negative integers");
        const std::uint64_t b = off[0].get<std::uint64_t>(), e = off[1].get<std::uint64_t>();
        if (e < b) bad("data_offsets [", b, ", ", e, "] end before they begin");
        if (e > data_size)
            bad("ends at byte ", e, " of the data area, but the area has ", data_size, " bytes");
        if (e - b != nbytes)
            bad("data_offsets [", b, ", ", e, "] hold ", e - b, " bytes, but ", detail::safetensors_dtype_name(info.dtype),
                " with shape ", info.shape, " needs ", nbytes);
        info.begin = b;  // relative for now; made absolute in check_tiling
        info.end = e;
        tensors_.push_back(std::move(info));
    }
}

inline void File::check_tiling(std::uint64_t data_start, std::uint64_t data_size) {
    // Sorted by where their data lies, the tensors must cover the buffer exactly: a hole could
    // hide data, an overlap lets two tensors alias each other.
    std::sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end != b.end ? a.end < b.end : a.name < b.name;
    });
    std::uint64_t covered = 0;
    const TensorInfo* previous = nullptr;
    for (const TensorInfo& t : tensors_) {
        if (t.begin > covered)
            fail_here("bytes [", covered, ", ", t.begin, ") of the data area belong to no tensor (a hole before tensor '",
                      t.name, "')");
        if (t.begin < covered)
            fail_here("tensor '", t.name, "' starts at byte ", t.begin, " of the data area, inside tensor '",
                      previous->name, "' which ends at byte ", covered, " (overlap)");
        covered = t.end;
        previous = &t;
    }
    if (covered != data_size)
        fail_here("the tensors end at byte ", covered, " of the data area, but the area has ", data_size,
                  " bytes (", data_size - covered, " trailing bytes belong to no tensor)");
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
        tensors_[i].begin += data_start;
        tensors_[i].end += data_start;
        index_.emplace(tensors_[i].name, i);  // names are unique: duplicates were refused above
    }
}

inline void File::place_data() {
    // The mapping starts on a page boundary, so a tensor is aligned in memory iff its file offset
    // is a multiple of its element size. Writers since safetensors 0.3.0 pad the header so every
    // tensor is; the format does not require it, and kernels reading a float at an odd address
    // may fault (vectorised loops assume element alignment). The rare misaligned tensor is
    // therefore copied once into aligned memory; every other tensor is used in place.
    data_.reserve(tensors_.size());
    for (const TensorInfo& t : tensors_) {
        const std::byte* p = map_.data() + t.begin;
        if (t.begin % dtype_size(t.dtype) != 0 && t.end > t.begin) {
            AlignedBuffer& copy = copies_.emplace_back(static_cast<std::size_t>(t.end - t.begin));
            std::memcpy(copy.data(), p, static_cast<std::size_t>(t.end - t.begin));
            p = copy.data();
        }
        data_.push_back(p);
    }
}

inline const TensorInfo* File::find(std::string_view name) const {
    const auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

inline Weight File::weight(std::string_view name) const {
    const auto it = index_.find(name);
    if (it == index_.end()) fail("safetensors: no tensor '", name, "' in ", path());
    return weight_at(it->second);
}

// ---- Checkpoint ----------------------------------------------------------------------------

inline Checkpoint::Checkpoint(const std::string& path_or_dir, const Limits& limits) : origin_(path_or_dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path p(path_or_dir);
    if (fs::is_directory(p, ec)) {
        const fs::path index = p / "model.safetensors.index.json", single = p / "model.safetensors";
        if (fs::exists(index, ec)) {
            load_index(index, limits);
        } else if (fs::exists(single, ec)) {
            files_.push_back(std::make_unique<File>(single.string(), limits));
            add_all(*files_.back());
        } else {
            fail("safetensors: ", path_or_dir, " holds neither model.safetensors nor model.safetensors.index.json");
        }
    } else if (path_or_dir.ends_with(".index.json")) {
        load_index(p, limits);
    } else {
        files_.push_back(std::make_unique<File>(path_or_dir, limits));
        add_all(*files_.back());
    }
}

inline void Checkpoint::add_all(const File& f) {
    for (std::size_t i = 0; i < f.tensors().size(); ++i) entries_.emplace(f.tensors()[i].name, Entry{&f, i});
}

inline void Checkpoint::load_index(const std::filesystem::path& index_path, const Limits& limits) {
    namespace fs = std::filesystem;
    using detail::json;
    const std::string where = index_path.string();
    std::error_code ec;
    const auto size = fs::file_size(index_path, ec);
    if (ec) fail("safetensors: cannot read index ", where, ": ", ec.message());
    if (size > limits.max_header_bytes)
        fail("safetensors: index ", where, " has ", size, " bytes, more than the limit of ", limits.max_header_bytes);
    std::ifstream in(index_path, std::ios::binary);
    std::string text(static_cast<std::size_t>(size), '\0');
    if (!in || !in.read(text.data(), static_cast<std::streamsize>(size)))
        fail("safetensors: cannot read index ", where);

    const detail::ParsedJson parsed = detail::parse_json_checking_duplicates(text, "safetensors: index " + where);
    if (!parsed.duplicate_key.empty())
        fail("safetensors: index ", where, " has the key '", parsed.duplicate_key, "' twice in one object");
    const json& root = parsed.value;
    if (!root.is_object()) fail("safetensors: index ", where, " is a JSON ", root.type_name(), ", expected an object");
    const auto map_it = root.find("weight_map");
    if (map_it == root.end()) fail("safetensors: index ", where, " has no 'weight_map'");
    if (!map_it->is_object())
        fail("safetensors: index ", where, ": weight_map is a JSON ", map_it->type_name(), ", expected an object of name → shard");
    if (map_it->empty()) fail("safetensors: index ", where, ": weight_map lists no tensors");

    // Validate every entry before opening anything: shard names are plain file names in the
    // index's directory, so an index cannot make us map /etc/passwd or ../../secret.
    std::map<std::string, std::vector<std::string>> by_shard;  // shard → tensor names
    for (const auto& [name, shard] : map_it->items()) {
        if (!shard.is_string())
            fail("safetensors: index ", where, ": weight_map['", name, "'] is ", detail::show(shard), ", expected a shard file name");
        const std::string s = shard.get<std::string>();
        if (s.empty() || s == "." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos ||
            s.find("..") != std::string::npos || s.find('\0') != std::string::npos)
            fail("safetensors: index ", where, ": shard '", s, "' for tensor '", name,
                 "' is not a plain file name (no '/', '\\' or '..')");
        by_shard[s].push_back(name);
    }
    const fs::path dir = index_path.parent_path();
    for (const auto& [shard, names] : by_shard) {
        const fs::path shard_path = dir / shard;
        if (!fs::is_regular_file(shard_path, ec))
            fail("safetensors: index ", where, " puts tensor '", names.front(), "' in shard '", shard, "', but ",
                 shard_path.string(), " does not exist (or is not a regular file)");
        files_.push_back(std::make_unique<File>(shard_path.string(), limits));  // each shard mapped once
        const File& f = *files_.back();
        for (const std::string& name : names) {
            const TensorInfo* t = f.find(name);
            if (!t)
                fail("safetensors: index ", where, " puts tensor '", name, "' in shard '", shard,
                     "', but that shard has no such tensor");
            entries_.emplace(name, Entry{&f, static_cast<std::size_t>(t - f.tensors().data())});
        }
    }
}

inline Weight Checkpoint::weight(std::string_view name) const {
    const auto it = entries_.find(name);
    if (it == entries_.end()) fail("safetensors: no tensor '", name, "' in ", origin_);
    return it->second.file->weight_at(it->second.index);
}

inline std::vector<std::string> Checkpoint::names() const {
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
}

inline std::uint64_t Checkpoint::mapped_bytes() const {
    std::uint64_t total = 0;
    for (const auto& f : files_) total += f->bytes().size();
    return total;
}

}  // namespace weft::safetensors
