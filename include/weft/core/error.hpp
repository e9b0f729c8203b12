// weft/core/error.hpp — the one exception type the library throws, and helpers that build
// its messages. Library code reports every failure through weft::Error; it never aborts.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace weft {

// Thrown for every failure the library detects: bad shapes, bad files, bad arguments.
// The message names the operation and the values involved, e.g.
// "add: shapes [3, 4] and [5] cannot be broadcast together".
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail {

// Concatenates any streamable values into a string.
template <class... Parts>
std::string concat(Parts&&... parts) {
    std::ostringstream out;
    (out << ... << std::forward<Parts>(parts));
    return out.str();
}

}  // namespace detail

// Throws weft::Error with the streamed parts as its message.
template <class... Parts>
[[noreturn]] void fail(Parts&&... parts) {
    throw Error(detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace weft
