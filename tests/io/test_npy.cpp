// .npy load/save: round trips, byte-for-byte agreement with files numpy writes, and corrupt files.
#include <doctest/doctest.h>

#include "../temp_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <weft/io/npy.hpp>

namespace test_npy {

namespace {

namespace fs = std::filesystem;
using weft::Shape;
using weft::Tensor;

using weft_test::TempDir;

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <class T>
std::string bytes_of(const std::vector<T>& values) {
    return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

// A header as numpy writes it: the dict, spaces up to a multiple of 64 bytes in all, then '\n'.
std::string numpy_v1(const std::string& dict) {
    std::string header = dict;
    header.append((64 - (10 + dict.size() + 1) % 64) % 64, ' ');
    header += '\n';
    return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size() & 0xFF) +
           static_cast<char>(header.size() >> 8) + header;
}
std::string numpy_v2(const std::string& dict) {
    std::string header = dict;
    header.append((64 - (12 + dict.size() + 1) % 64) % 64, ' ');
    header += '\n';
    std::string len(4, '\0');
    for (int i = 0; i < 4; ++i) len[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
    return std::string("\x93NUMPY\x02\x00", 8) + len + header;
}

const std::vector<float> six_floats = {1.0f, -2.5f, 3.0f, 0.125f, -0.0f, 1e-30f};

template <class T, class F>
std::string error_of(F&& f) {
    try {
        (void)f();
    } catch (const weft::Error& e) {
        return e.what();
    }
    return "<no error thrown>";
}

bool has(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

// Writes `contents`, loads it as T, checks the error names the file and contains `needle`.
template <class T = float>
void check_rejected(const TempDir& dir, const std::string& contents, const std::string& needle) {
    const std::string path = dir.write("bad.npy", contents);
    const std::string message = error_of<T>([&] { return weft::npy::load<T>(path); });
    INFO("expected: ", needle);
    CHECK_MESSAGE(has(message, needle), message);
    CHECK_MESSAGE(has(message, path), message);
}

}  // namespace

TEST_CASE("npy: save writes exactly the bytes numpy writes for the same array") {
    TempDir dir("npy_numpy_bytes");
    // np.save(f, np.array([[1, -2.5, 3], [0.125, -0, 1e-30]], dtype=np.float32))
    const std::string numpy_file = numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six_floats);
    CHECK(numpy_file.size() == 128 + 24);
    CHECK(numpy_file[127] == '\n');

    const Tensor<float> t(Shape{2, 3}, std::span<const float>(six_floats));
    weft::npy::save(dir.file("a.npy"), t);
    CHECK(read_all(dir.file("a.npy")) == numpy_file);

    // 1-D shapes get numpy's trailing comma, scalars an empty tuple.
    weft::npy::save(dir.file("v.npy"), Tensor<double>(Shape{3}, {1.0, 2.0, 3.0}));
    CHECK(read_all(dir.file("v.npy")) ==
          numpy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }") + bytes_of(std::vector<double>{1, 2, 3}));
    weft::npy::save(dir.file("s.npy"), Tensor<std::int32_t>(Shape{}, {7}));
    CHECK(read_all(dir.file("s.npy")) ==
          numpy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (), }") + bytes_of(std::vector<std::int32_t>{7}));
}

TEST_CASE("npy: load reads files numpy wrote, in format 1.0 and 2.0") {
    TempDir dir("npy_numpy_load");
    const Tensor<float> a = weft::npy::load<float>(
        dir.write("a.npy", numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six_floats)));
    CHECK(a.shape() == Shape{2, 3});
    CHECK(a(0, 1) == -2.5f);
    CHECK(a(1, 2) == 1e-30f);

    const Tensor<float> b = weft::npy::load<float>(
        dir.write("b.npy", numpy_v2("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }") + bytes_of(six_floats)));
    CHECK(b.shape() == Shape{3, 2});
    CHECK(b(1, 1) == 0.125f);

    // Python 2 numpy wrote long literals; keys in another order and double quotes are still a dict.
    const Tensor<double> c = weft::npy::load<double>(dir.write(
        "c.npy", numpy_v1("{\"shape\": (2L,), 'fortran_order': False, 'descr': '<f8'}") + bytes_of(std::vector<double>{4.0, 5.0})));
    CHECK(c.shape() == Shape{2});
    CHECK(c(1) == 5.0);

    const Tensor<std::int32_t> e = weft::npy::load<std::int32_t>(
        dir.write("e.npy", numpy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (0, 3), }")));
    CHECK(e.shape() == Shape{0, 3});
    CHECK(e.numel() == 0);
}

TEST_CASE("npy: float, double and int32 tensors survive a save/load round trip bit for bit") {
    TempDir dir("npy_roundtrip");
    Tensor<float> f(Shape{3, 5, 7});
    for (std::size_t i = 0; i < f.span().size(); ++i) f.span()[i] = static_cast<float>(i) * 0.37f - 11.0f;
    weft::npy::save(dir.file("f.npy"), f);
    const Tensor<float> f2 = weft::npy::load<float>(dir.file("f.npy"));
    CHECK(f2.shape() == f.shape());
    CHECK(std::equal(f.span().begin(), f.span().end(), f2.span().begin()));

    const Tensor<double> d(Shape{2, 2}, {1e300, -1e-300, 3.141592653589793, 0.0});
    weft::npy::save(dir.file("d.npy"), d);
    const Tensor<double> d2 = weft::npy::load<double>(dir.file("d.npy"));
    CHECK(d2.shape() == d.shape());
    CHECK(std::equal(d.span().begin(), d.span().end(), d2.span().begin()));

    const Tensor<std::int32_t> i(Shape{2, 1, 3}, {1, -2, 2147483647, -2147483647 - 1, 0, 42});
    weft::npy::save(dir.file("i.npy"), i);
    const Tensor<std::int32_t> i2 = weft::npy::load<std::int32_t>(dir.file("i.npy"));
    CHECK(i2.shape() == i.shape());
    CHECK(std::equal(i.span().begin(), i.span().end(), i2.span().begin()));

    const Tensor<float> s(Shape{}, {2.5f});
    weft::npy::save(dir.file("s.npy"), s);
    const Tensor<float> s2 = weft::npy::load<float>(dir.file("s.npy"));
    CHECK(s2.shape().rank() == 0);
    CHECK(s2.data()[0] == 2.5f);

    const Tensor<float> z(Shape{4, 0});
    weft::npy::save(dir.file("z.npy"), z);
    CHECK(weft::npy::load<float>(dir.file("z.npy")).shape() == Shape{4, 0});
}

TEST_CASE("npy: load refuses a file of another dtype, naming both") {
    TempDir dir("npy_dtype");
    const std::string f8 = numpy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }") + std::string(24, '\0');
    check_rejected<float>(dir, f8, "holds '<f8' (float64) values, but load<float32> expects '<f4'");
    check_rejected<std::int32_t>(dir, f8, "holds '<f8' (float64) values, but load<int32> expects '<i4'");
    check_rejected<double>(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }") + std::string(12, '\0'),
                           "holds '<f4' (float32) values, but load<float64> expects '<f8'");
    check_rejected<float>(dir, numpy_v1("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }") + std::string(12, '\0'),
                          "holds '>f4' (big-endian) values");
    check_rejected<float>(dir, numpy_v1("{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }") + std::string(6, '\0'),
                          "holds '<f2' (float16) values");
}

TEST_CASE("npy: load refuses a bad magic, version or header length") {
    TempDir dir("npy_preamble");
    const std::string good = numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six_floats);
    check_rejected(dir, "", "not a .npy file");
    check_rejected(dir, good.substr(0, 7), "not a .npy file");
    check_rejected(dir, "PK\x03\x04 this is a zip file", "not a .npy file (it does not start with \"\\x93NUMPY\")");
    std::string v3 = good;
    v3[6] = 3;
    check_rejected(dir, v3, "format version 3.0 is not supported (1.0 or 2.0)");
    std::string v11 = good;
    v11[7] = 1;
    check_rejected(dir, v11, "format version 1.1 is not supported");
    check_rejected(dir, good.substr(0, 9), "too short for a format 1.0 preamble of 10");
    check_rejected(dir, std::string("\x93NUMPY\x02\x00\x10\x00", 10), "too short for a format 2.0 preamble of 12");
    std::string long_header = good;
    long_header[8] = '\xff';
    long_header[9] = '\x7f';
    check_rejected(dir, long_header, "the header length 32767 runs past the end of the file (142 bytes follow)");
    check_rejected(dir, good.substr(0, 60), "the header length 118 runs past the end of the file (50 bytes follow)");
}

TEST_CASE("npy: load refuses a header dict it cannot read, naming the problem") {
    TempDir dir("npy_dict");
    auto file = [](const std::string& dict) { return numpy_v1(dict) + bytes_of(six_floats); };
    check_rejected(dir, file("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}"), "expected '{' at offset 0 of the header, found '''");
    check_rejected(dir, file("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3), }"), "expected ',' or '}' at offset 17 of the header, found 'f'");
    check_rejected(dir, file("{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "expected ':' at offset 9 of the header, found '''");
    check_rejected(dir, file("{'descr': '<f4"), "unterminated string starting at offset 10");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), "), "found the end of the header");
    check_rejected(dir, file("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }"), "expected ',' or '}' at offset 16");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False}"), "the header has no 'shape'");
    check_rejected(dir, file("{'fortran_order': False, 'shape': (2, 3)}"), "the header has no 'descr'");
    check_rejected(dir, file("{'descr': '<f4', 'shape': (2, 3)}"), "the header has no 'fortran_order'");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'extra': 1}"),
                   "unexpected key 'extra' (expected 'descr', 'fortran_order' and 'shape')");
    check_rejected(dir, file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}"),
                   "the key 'descr' appears twice");
    check_rejected(dir, file("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,)}"),
                   "'descr' is not a string (structured dtypes are not supported)");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3)}"), "'fortran_order' must be True or False");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}"), "'fortran_order' must be True or False, found '0'");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3]}"), "'shape' must be a tuple such as (2, 3), found '['");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (6)}"),
                   "'shape' (6) is not a tuple; a 1-D shape is written (6,)");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}"), "'shape' has a negative size");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}"), "expected a size in 'shape'");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}"), "expected ',' or ')' in 'shape'");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"), "does not fit 64 bits");
    check_rejected(dir, file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } junk"), "unexpected 'j' after the header's closing '}'");
    check_rejected(dir, file("{'descr': 'a\\'b', 'fortran_order': False, 'shape': (2, 3)}"), "escape sequences are not expected");
}

TEST_CASE("npy: load refuses Fortran order, too many axes and data of the wrong size") {
    TempDir dir("npy_data");
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }") + bytes_of(six_floats),
                   "fortran_order is True; weft reads C-order arrays");
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 6), }") + bytes_of(six_floats),
                   "shape has 9 axes; weft tensors have at most 8");
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six_floats).substr(0, 20),
                   "shape [2, 3] of '<f4' needs 24 bytes of data, but the file has 20 after its header");
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") + bytes_of(six_floats) + "x",
                   "needs 24 bytes of data, but the file has 25 after its header");
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }"),
                   "shape has more elements than 64 bits can count");
    // 2^62 elements count fine; their 2^64 bytes do not (a wrapped product would be 0).
    check_rejected(dir, numpy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }"),
                   "needs more than 2^64 bytes of data, but the file has 0 after its header");
}

TEST_CASE("npy: load names a file it cannot open, save a file it cannot create") {
    CHECK(has(error_of<float>([] { return weft::npy::load<float>("no_such_dir_weft/x.npy"); }), "no_such_dir_weft/x.npy"));
    CHECK(has(error_of<float>([] {
                  weft::npy::save("no_such_dir_weft/x.npy", Tensor<float>(Shape{1}));
                  return 0;
              }),
              "npy: cannot create no_such_dir_weft/x.npy"));
}

}  // namespace test_npy
