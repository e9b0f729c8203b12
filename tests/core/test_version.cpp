// The version is written in six places; this test keeps them equal to version.hpp:
// CMakeLists.txt (project), version.hpp (string and macros), the vcpkg port and the development
// manifest (vcpkg.json "version"), and the Conan recipe (version = "...").
#include <weft/version.hpp>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

namespace test_version {

namespace {

std::string read_source_file(const std::string& relative) {
    std::ifstream in(std::string(WEFT_SOURCE_DIR) + "/" + relative, std::ios::binary);
    REQUIRE_MESSAGE(in, "cannot open ", relative);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The text between `key` and the next `end` character, or "(no <key> in <file>)".
std::string value_after(const std::string& text, const std::string& key, char end, const std::string& file) {
    const auto at = text.find(key);
    if (at == std::string::npos) return "(no " + key + " in " + file + ")";
    const auto begin = at + key.size();
    return text.substr(begin, text.find(end, begin) - begin);
}

}  // namespace

TEST_CASE("the version in version.hpp matches its macros") {
    CHECK(std::string(weft::version_string) ==
          std::to_string(WEFT_VERSION_MAJOR) + "." + std::to_string(WEFT_VERSION_MINOR) + "." + std::to_string(WEFT_VERSION_PATCH));
}

TEST_CASE("CMake, vcpkg and Conan give the version in version.hpp") {
    const std::string version = weft::version_string;
    // project(weft VERSION 0.1.0 DESCRIPTION ...)
    CHECK(value_after(read_source_file("CMakeLists.txt"), "project(weft VERSION ", ' ', "CMakeLists.txt") == version);
    // "version": "0.1.0",   (the first "version" key; the manifests have no other)
    for (const std::string manifest : {"ports/weft/vcpkg.json", "vcpkg.json"}) {
        CAPTURE(manifest);
        CHECK(value_after(read_source_file(manifest), "\"version\": \"", '"', manifest) == version);
    }
    //     version = "0.1.0"
    CHECK(value_after(read_source_file("conanfile.py"), "\n    version = \"", '"', "conanfile.py") == version);
}

}  // namespace test_version
