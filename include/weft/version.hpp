// weft/version.hpp — the library's version; equal to the one in CMakeLists.txt (a test checks).
#pragma once

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

namespace weft {
inline constexpr const char* version_string = "0.1.0";
}
