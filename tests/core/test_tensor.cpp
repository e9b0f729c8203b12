// Shape, Tensor and TensorView: construction, views of views, errors that name the shapes,
// memory-mapped files.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../helpers.hpp"

namespace test_tensor {

using weft::Index;
using weft::Shape;
using weft::Tensor;
using weft::TensorView;

TEST_CASE("Shape counts elements, normalises axes and refuses overflow") {
    const Shape s{2, 3, 4};
    CHECK(s.rank() == 3);
    CHECK(s.numel() == 24);
    CHECK(s.dim(-1) == 4);
    CHECK(Shape{}.numel() == 1);
    CHECK(s.str() == "[2, 3, 4]");
    CHECK_THROWS_WITH_AS(s.dim(3), "Shape::dim: axis 3 is out of range for shape [2, 3, 4]", weft::Error);
    CHECK_THROWS_AS((Shape{Index(1) << 40, Index(1) << 40}.numel()), weft::Error);
    CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5, 6, 7, 8, 9}), weft::Error);
    CHECK_THROWS_AS((Shape{2, -1}), weft::Error);
}

TEST_CASE("broadcast_shapes follows numpy and names both shapes when it cannot") {
    CHECK(weft::broadcast_shapes(Shape{3, 1, 5}, Shape{4, 1}, "add") == Shape{3, 4, 5});
    CHECK(weft::broadcast_shapes(Shape{}, Shape{2}, "add") == Shape{2});
    CHECK_THROWS_WITH_AS(weft::broadcast_shapes(Shape{3, 4}, Shape{5}, "add"),
                         "add: shapes [3, 4] and [5] cannot be broadcast together", weft::Error);
}

TEST_CASE("Tensor is zero-filled, 64-byte aligned, copies deeply and moves cheaply") {
    Tensor<float> t(Shape{3, 5});
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    for (float x : t.span()) CHECK(x == 0.0f);
    t(1, 2) = 7.0f;
    Tensor<float> copy = t;
    copy(1, 2) = 8.0f;
    CHECK(t(1, 2) == 7.0f);
    const float* before = t.data();
    Tensor<float> moved = std::move(t);
    CHECK(moved.data() == before);
    Tensor<int> fives(Shape{4}, 5);
    CHECK(fives(3) == 5);
    CHECK_THROWS_WITH_AS((Tensor<float>(Shape{2, 2}, {1.0f, 2.0f, 3.0f})), "Tensor: 3 values given for shape [2, 2] (4 elements)",
                         weft::Error);
}

TEST_CASE("at() checks every index and names the shape") {
    Tensor<float> t(Shape{2, 3});
    CHECK_NOTHROW(t.at(1, 2));
    CHECK_THROWS_WITH_AS(t.at(1, 3), "at: index 3 is out of range for axis 1 of shape [2, 3]", weft::Error);
    CHECK_THROWS_WITH_AS(t.at(1), "at: 1 indices for a tensor of shape [2, 3]", weft::Error);
}

TEST_CASE("views slice, select, transpose, permute, broadcast and reshape without copying") {
    Tensor<float> t(Shape{4, 6});
    for (Index i = 0; i < 4; ++i)
        for (Index j = 0; j < 6; ++j) t(i, j) = float(10 * i + j);

    auto cols = t.slice(1, 1, 6, 2);  // columns 1, 3, 5
    CHECK(cols.shape() == Shape{4, 3});
    CHECK(cols(2, 1) == 23.0f);
    CHECK_FALSE(cols.is_contiguous());
    CHECK(t.slice(0, -2, 100).shape() == Shape{2, 6});  // Python-style negative start, clamped stop
    CHECK(t.slice(0, 3, 1).shape() == Shape{0, 6});
    CHECK_THROWS_AS(t.slice(0, 0, 2, 0), weft::Error);

    auto row = t.select(0, 2);
    CHECK(row.shape() == Shape{6});
    CHECK(row(5) == 25.0f);
    CHECK(t.select(0, -1)(0) == 30.0f);
    CHECK_THROWS_WITH_AS(t.select(0, 4), "select: index 4 is out of range for axis 0 of shape [4, 6]", weft::Error);

    auto tr = t.transpose();
    CHECK(tr.shape() == Shape{6, 4});
    CHECK(tr(5, 3) == 35.0f);

    Tensor<float> cube(Shape{2, 3, 4});
    cube(1, 2, 3) = 1.0f;
    auto p = cube.permute({2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p(3, 1, 2) == 1.0f);
    CHECK_THROWS_AS(cube.permute({0, 0, 1}), weft::Error);

    auto r = t.reshape({3, -1});
    CHECK(r.shape() == Shape{3, 8});
    CHECK(r(1, 0) == t(1, 2));
    CHECK_THROWS_WITH_AS(t.reshape({5, -1}), "reshape: cannot view shape [4, 6] as [5, 4]", weft::Error);
    CHECK_THROWS_AS(tr.reshape({24}), weft::Error);  // not contiguous

    auto b = t.select(0, 1).broadcast_to(Shape{3, 6});
    CHECK(b(2, 4) == 14.0f);
    CHECK(b.strides()[0] == 0);
    CHECK_THROWS_AS(t.broadcast_to(Shape{4, 5}), weft::Error);

    auto u = t.unsqueeze(0);
    CHECK(u.shape() == Shape{1, 4, 6});
    CHECK(u.squeeze(0).shape() == Shape{4, 6});
    CHECK_THROWS_AS(t.squeeze(0), weft::Error);
}

TEST_CASE("assigning to a view writes through to the tensor it views") {
    Tensor<float> t(Shape{3, 4});
    t.slice(1, 1, 3) = Tensor<float>(Shape{2}, {5.0f, 6.0f});  // broadcast over rows
    CHECK(t(2, 1) == 5.0f);
    CHECK(t(2, 2) == 6.0f);
    CHECK(t(2, 3) == 0.0f);
    t.transpose().select(0, 3).fill(9.0f);
    CHECK(t(0, 3) == 9.0f);
    CHECK(t(2, 3) == 9.0f);
    CHECK_THROWS_WITH_AS(t.slice(1, 0, 2) = Tensor<float>(Shape{3}), "assign: shapes [3, 2] and [3] cannot be broadcast together",
                         weft::Error);
}

TEST_CASE("MappedFile maps a file read-only and reports missing files by name") {
    const std::string path = "weft_test_mapped.bin";
    {
        std::ofstream out(path, std::ios::binary);
        const float values[] = {1.5f, -2.0f, 3.25f};
        out.write(reinterpret_cast<const char*>(values), sizeof values);
    }
    {
        weft::MappedFile file(path);
        REQUIRE(file.size() == 12);
        auto v = weft::view_of(reinterpret_cast<const float*>(file.data()), Shape{3});
        CHECK(v(2) == 3.25f);
        Tensor<float> doubled = v * 2.0f;
        CHECK(doubled(1) == -4.0f);
        std::vector<std::pair<std::size_t, std::size_t>> progress;
        file.prefetch([&](std::size_t done, std::size_t total) { progress.emplace_back(done, total); });
        CHECK(progress == std::vector<std::pair<std::size_t, std::size_t>>{{12, 12}});
    }
    std::remove(path.c_str());
    CHECK_THROWS_WITH_AS(weft::MappedFile("no/such/file.gguf"), "cannot open 'no/such/file.gguf': No such file or directory",
                         weft::Error);
}

TEST_CASE("MappedFile in FileLoad::copy holds the same bytes on 2 MiB-aligned memory, and moves") {
    const std::string path = "weft_test_copied.bin";
    // 3 MiB + 5 bytes: more than one huge page, and not a whole number of pages
    std::vector<unsigned char> bytes((std::size_t(3) << 20) + 5);
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 131 + i / 4096);
    {
        std::ofstream out(path, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        std::ofstream(path + ".empty", std::ios::binary);
    }
    CHECK(weft::file_load() == weft::FileLoad::map);
    weft::MappedFile copied(path, weft::FileLoad::copy);
    REQUIRE(copied.size() == bytes.size());
    CHECK(std::memcmp(copied.data(), bytes.data(), bytes.size()) == 0);
#if defined(WEFT_HAVE_MMAP)
    CHECK(reinterpret_cast<std::uintptr_t>(copied.data()) % (std::uintptr_t(2) << 20) == 0);
#endif
    const weft::MappedFile mapped(path, weft::FileLoad::map);
    CHECK(std::memcmp(mapped.data(), copied.data(), bytes.size()) == 0);
    weft::MappedFile moved = std::move(copied);
    CHECK(copied.data() == nullptr);
    CHECK(std::memcmp(moved.data(), bytes.data(), bytes.size()) == 0);
    // A copy can be rewritten (loaders lay weights out for decoding so), also after a rewrite
    // that threw; the file's mapping cannot.
    CHECK(moved.copied());
    CHECK_FALSE(copied.copied());
    moved.edit([](std::span<std::byte> b) { b[b.size() - 1] = std::byte{0xAB}; });
    CHECK(moved.data()[bytes.size() - 1] == std::byte{0xAB});
    CHECK(mapped.data()[bytes.size() - 1] == std::byte{bytes.back()});
    CHECK_THROWS_AS(moved.edit([](std::span<std::byte>) { weft::fail("rewrite failed"); }), weft::Error);
    moved.edit([&](std::span<std::byte> b) { b[b.size() - 1] = std::byte{bytes.back()}; });
    CHECK(std::memcmp(moved.data(), bytes.data(), bytes.size()) == 0);
#if defined(WEFT_HAVE_MMAP)
    CHECK_FALSE(mapped.copied());
    {
        weft::MappedFile file_pages(path, weft::FileLoad::map);
        CHECK_THROWS_WITH_AS(file_pages.edit([](std::span<std::byte>) {}), doctest::Contains("is mapped, not copied"), weft::Error);
    }
#endif

    weft::set_file_load(weft::FileLoad::copy);  // the default for loaders that do not say
    const weft::MappedFile by_default(path);
    weft::set_file_load(weft::FileLoad::map);
    CHECK(std::memcmp(by_default.data(), bytes.data(), bytes.size()) == 0);
#if defined(__linux__)
    {  // the copies are not mappings of the file: only `mapped` is
        std::ifstream maps("/proc/self/maps");
        int mappings = 0;
        for (std::string line; std::getline(maps, line);) mappings += line.find(path) != std::string::npos;
        CHECK(mappings == 1);
    }
#endif
    const weft::MappedFile empty(path + ".empty", weft::FileLoad::copy);
    CHECK(empty.size() == 0);
    std::remove(path.c_str());
    std::remove((path + ".empty").c_str());
    CHECK_THROWS_WITH_AS(weft::MappedFile("no/such/file.gguf", weft::FileLoad::copy),
                         "cannot open 'no/such/file.gguf': No such file or directory", weft::Error);
}

}  // namespace test_tensor
