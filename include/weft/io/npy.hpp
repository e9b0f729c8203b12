// weft/io/npy.hpp — numpy's .npy format for float, double and int32 tensors: load (format 1.0 and
// 2.0) and save (1.0). Used to exchange reference activations with PyTorch/numpy scripts; sits on
// core/tensor.hpp and core/storage.hpp.
//
// Format: "\x93NUMPY", major, minor, a little-endian header length (u16 in 1.0, u32 in 2.0), a
// Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with
// spaces and ending in '\n', then the elements in C order.
#pragma once

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "weft/core/error.hpp"
#include "weft/core/shape.hpp"
#include "weft/core/storage.hpp"
#include "weft/core/tensor.hpp"

namespace weft::npy {

// Reads a .npy file holding T values ('<f4' float, '<f8' double, '<i4' int32_t) in C order.
template <class T>
Tensor<T> load(const std::string& path);

// Writes t as a format 1.0 .npy file numpy reads with np.load.
template <class T>
void save(const std::string& path, const Tensor<T>& t);

// =============================================================================================
// Implementation
// =============================================================================================

namespace detail {

template <class T>
constexpr const char* descr_of() {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int32_t>,
                  "weft::npy reads and writes float ('<f4'), double ('<f8') and int32_t ('<i4') tensors");
    static_assert(std::endian::native == std::endian::little,
                  "weft::npy writes and reads little-endian data and expects a little-endian host");
    if constexpr (std::is_same_v<T, float>) return "<f4";
    else if constexpr (std::is_same_v<T, double>) return "<f8";
    else return "<i4";
}

inline constexpr char magic[] = "\x93NUMPY";  // 6 bytes (+ terminator)
inline constexpr std::size_t magic_size = 6;

struct Header {
    std::string descr;
    bool fortran_order = false;
    std::vector<Index> shape;
};

// A hand parser for the small Python literal numpy writes: a dict of string keys whose values are
// strings, True/False, or tuples of non-negative integers. Anything else is refused by name.
class DictParser {
public:
    DictParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

    Header parse() {
        Header h;
        bool seen_descr = false, seen_fortran = false, seen_shape = false;
        expect('{');
        while (true) {
            skip_space();
            if (peek() == '}') break;
            const std::string key = string_literal();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (seen_descr) error("the key 'descr' appears twice");
                seen_descr = true;
                if (peek() != '\'' && peek() != '"')
                    error("'descr' is not a string (structured dtypes are not supported)");
                h.descr = string_literal();
            } else if (key == "fortran_order") {
                if (seen_fortran) error("the key 'fortran_order' appears twice");
                seen_fortran = true;
                h.fortran_order = boolean();
            } else if (key == "shape") {
                if (seen_shape) error("the key 'shape' appears twice");
                seen_shape = true;
                h.shape = tuple();
            } else {
                error("unexpected key '", key, "' (expected 'descr', 'fortran_order' and 'shape')");
            }
            skip_space();
            if (peek() == ',') { ++pos_; continue; }
            if (peek() == '}') break;
            error("expected ',' or '}' at offset ", pos_, " of the header, found ", found());
        }
        ++pos_;  // '}'
        // numpy pads with spaces and ends the header with '\n'.
        for (; pos_ < s_.size(); ++pos_)
            if (s_[pos_] != ' ' && s_[pos_] != '\n' && s_[pos_] != '\r' && s_[pos_] != '\t')
                error("unexpected ", found(), " after the header's closing '}'");
        if (!seen_descr) error("the header has no 'descr'");
        if (!seen_fortran) error("the header has no 'fortran_order'");
        if (!seen_shape) error("the header has no 'shape'");
        return h;
    }

private:
    template <class... Parts>
    [[noreturn]] void error(const Parts&... parts) const { fail("npy: ", path_, ": ", parts...); }

    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
    std::string found() const {
        if (pos_ >= s_.size()) return "the end of the header";
        const unsigned char c = static_cast<unsigned char>(s_[pos_]);
        if (c >= 0x20 && c < 0x7F) return std::string("'") + s_[pos_] + "'";
        return "byte " + std::to_string(c);
    }
    void skip_space() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    void expect(char c) {
        skip_space();
        if (peek() != c) error("expected '", c, "' at offset ", pos_, " of the header, found ", found());
        ++pos_;
    }
    std::string string_literal() {
        skip_space();
        const char q = peek();
        if (q != '\'' && q != '"') error("expected a quoted string at offset ", pos_, " of the header, found ", found());
        const std::size_t start = ++pos_;
        while (pos_ < s_.size() && s_[pos_] != q) {
            if (s_[pos_] == '\\') error("escape sequences are not expected in a .npy header (offset ", pos_, ")");
            ++pos_;
        }
        if (pos_ >= s_.size()) error("unterminated string starting at offset ", start - 1, " of the header");
        return std::string(s_.substr(start, pos_++ - start));
    }
    bool boolean() {
        if (s_.substr(pos_, 4) == "True") { pos_ += 4; return true; }
        if (s_.substr(pos_, 5) == "False") { pos_ += 5; return false; }
        error("'fortran_order' must be True or False, found ", found(), " at offset ", pos_);
    }
    std::vector<Index> tuple() {
        if (peek() != '(') error("'shape' must be a tuple such as (2, 3), found ", found(), " at offset ", pos_);
        ++pos_;
        std::vector<Index> dims;
        bool trailing_comma = false;
        while (true) {
            skip_space();
            if (peek() == ')') break;
            dims.push_back(integer());
            skip_space();
            trailing_comma = peek() == ',';
            if (trailing_comma) { ++pos_; continue; }
            if (peek() != ')') error("expected ',' or ')' in 'shape' at offset ", pos_, ", found ", found());
        }
        ++pos_;  // ')'
        // In Python "(3)" is the integer 3, not a tuple; numpy writes "(3,)".
        if (dims.size() == 1 && !trailing_comma) error("'shape' (", dims[0], ") is not a tuple; a 1-D shape is written (", dims[0], ",)");
        return dims;
    }
    Index integer() {
        if (peek() == '-') error("'shape' has a negative size at offset ", pos_);
        if (peek() < '0' || peek() > '9') error("expected a size in 'shape' at offset ", pos_, ", found ", found());
        std::uint64_t v = 0;
        while (peek() >= '0' && peek() <= '9') {
            const unsigned d = static_cast<unsigned>(peek() - '0');
            if (v > (static_cast<std::uint64_t>(std::numeric_limits<Index>::max()) - d) / 10)
                error("a size in 'shape' at offset ", pos_, " does not fit 64 bits");
            v = v * 10 + d;
            ++pos_;
        }
        if (peek() == 'L') ++pos_;  // Python 2 long literal, written by old numpy versions
        return static_cast<Index>(v);
    }

    std::string_view s_;
    std::size_t pos_ = 0;
    const std::string& path_;
};

inline const char* descr_meaning(std::string_view d) {
    if (d == "<f4") return "float32";
    if (d == "<f8") return "float64";
    if (d == "<i4") return "int32";
    if (d == "<f2") return "float16";
    if (d == "<i8") return "int64";
    if (d == "|b1") return "bool";
    if (!d.empty() && d[0] == '>') return "big-endian";
    return "unsupported";
}

}  // namespace detail

template <class T>
Tensor<T> load(const std::string& path) {
    const std::string_view want = detail::descr_of<T>();
    const MappedFile file(path);
    const auto* bytes = reinterpret_cast<const unsigned char*>(file.data());
    const std::uint64_t size = file.size();
    auto bad = [&](const auto&... parts) { fail("npy: ", path, ": ", parts...); };

    if (size < detail::magic_size + 2 || std::memcmp(bytes, detail::magic, detail::magic_size) != 0)
        bad("not a .npy file (it does not start with \"\\x93NUMPY\")");
    const unsigned major = bytes[6], minor = bytes[7];
    std::uint64_t prefix = 0, header_len = 0;
    if (major == 1 && minor == 0) {
        prefix = 10;
        if (size < prefix) bad("the file has ", size, " bytes, too short for a format 1.0 preamble of 10");
        header_len = bytes[8] | (std::uint64_t(bytes[9]) << 8);
    } else if (major == 2 && minor == 0) {
        prefix = 12;
        if (size < prefix) bad("the file has ", size, " bytes, too short for a format 2.0 preamble of 12");
        header_len = bytes[8] | (std::uint64_t(bytes[9]) << 8) | (std::uint64_t(bytes[10]) << 16) |
                     (std::uint64_t(bytes[11]) << 24);
    } else {
        bad("format version ", major, ".", minor, " is not supported (1.0 or 2.0)");
    }
    if (header_len > size - prefix)
        bad("the header length ", header_len, " runs past the end of the file (", size - prefix, " bytes follow)");

    const std::string_view text(reinterpret_cast<const char*>(bytes) + prefix, static_cast<std::size_t>(header_len));
    const detail::Header h = detail::DictParser(text, path).parse();
    if (h.descr != want)
        bad("holds '", h.descr, "' (", detail::descr_meaning(h.descr), ") values, but load<", detail::descr_meaning(want),
            "> expects '", want, "'");
    if (h.fortran_order)
        bad("fortran_order is True; weft reads C-order arrays (save np.ascontiguousarray(a) instead)");
    if (h.shape.size() > static_cast<std::size_t>(max_rank))
        bad("shape has ", h.shape.size(), " axes; weft tensors have at most ", max_rank);

    std::uint64_t numel = 1;
    for (Index d : h.shape) {
        const auto u = static_cast<std::uint64_t>(d);
        if (u != 0 && numel > std::numeric_limits<std::uint64_t>::max() / u) bad("shape has more elements than 64 bits can count");
        numel *= u;
    }
    const std::uint64_t data_size = size - prefix - header_len;
    if (numel > data_size / sizeof(T) || numel * sizeof(T) != data_size)
        bad("shape ", Shape(std::span<const Index>(h.shape)), " of '", want, "' needs ",
            numel > std::numeric_limits<std::uint64_t>::max() / sizeof(T) ? std::string("more than 2^64")
                                                                          : std::to_string(numel * sizeof(T)),
            " bytes of data, but the file has ", data_size, " after its header");

    Tensor<T> t = Tensor<T>::uninitialized(Shape(std::span<const Index>(h.shape)));
    if (data_size) std::memcpy(t.data(), bytes + prefix + header_len, static_cast<std::size_t>(data_size));
    return t;
}

template <class T>
void save(const std::string& path, const Tensor<T>& t) {
    std::string header = "{'descr': '";
    header += detail::descr_of<T>();
    header += "', 'fortran_order': False, 'shape': (";
    for (int i = 0; i < t.shape().rank(); ++i) header += std::to_string(t.shape()[i]) + ", ";
    if (t.shape().rank() > 1) header.resize(header.size() - 2);          // (2, 3)
    else if (t.shape().rank() == 1) header.resize(header.size() - 1);    // (3,)
    header += "), }";
    // numpy aligns the data to 64 bytes: pad with spaces, end with '\n'.
    const std::size_t unpadded = detail::magic_size + 4 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';

    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) fail("npy: cannot create ", path, ": ", std::strerror(errno));
    const char preamble[] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             static_cast<char>(header.size() & 0xFF), static_cast<char>(header.size() >> 8)};
    out.write(preamble, sizeof preamble);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    const auto nbytes = static_cast<std::streamsize>(static_cast<std::size_t>(t.numel()) * sizeof(T));
    if (nbytes) out.write(reinterpret_cast<const char*>(t.data()), nbytes);
    out.close();
    if (!out) fail("npy: writing ", path, " failed: ", std::strerror(errno));
}

}  // namespace weft::npy
