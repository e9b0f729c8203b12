# A Conan 2 recipe for nlohmann/json that repackages the headers already installed on this machine
# (Debian/Ubuntu: nlohmann-json3-dev), for building weft's Conan package where ConanCenter cannot
# be reached. Same package name, CMake file and target as ConanCenter's recipe, so weft's
# conanfile.py works unchanged with either.
#
#   conan create scripts/conan/nlohmann_json            # exports nlohmann_json/<the system's version>
#   NLOHMANN_JSON_INCLUDEDIR=/opt/json/include conan create scripts/conan/nlohmann_json
#
# The version is read from the headers (NLOHMANN_JSON_VERSION_* in nlohmann/detail/abi_macros.hpp,
# or nlohmann/json.hpp before 3.11).
import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.files import copy, load

required_conan_version = ">=2.0"


def _include_dir():
    return os.environ.get("NLOHMANN_JSON_INCLUDEDIR", "/usr/include")


class NlohmannJsonSystemConan(ConanFile):
    name = "nlohmann_json"
    description = "JSON for Modern C++ (repackaged from the system's headers for offline builds)"
    license = "MIT"
    url = "https://github.com/nlohmann/json"
    homepage = "https://github.com/nlohmann/json"
    topics = ("json", "header-only")
    package_type = "header-library"
    no_copy_source = True

    def set_version(self):
        if self.version:
            return
        text = ""
        for candidate in ("nlohmann/detail/abi_macros.hpp", "nlohmann/json.hpp"):
            path = os.path.join(_include_dir(), candidate)
            if os.path.isfile(path):
                text += load(self, path)
        parts = [re.search(r"#\s*define\s+NLOHMANN_JSON_VERSION_%s\s+(\d+)" % p, text) for p in ("MAJOR", "MINOR", "PATCH")]
        if not all(parts):
            raise ConanException(
                f"no nlohmann/json headers with NLOHMANN_JSON_VERSION_* under {_include_dir()}: install "
                "nlohmann-json3-dev (apt) or set NLOHMANN_JSON_INCLUDEDIR to the directory holding nlohmann/")
        self.version = ".".join(m.group(1) for m in parts)

    def package_id(self):
        self.info.clear()

    def package(self):
        include_dir = _include_dir()
        copy(self, "nlohmann/*", src=include_dir, dst=os.path.join(self.package_folder, "include"))
        if not os.path.isfile(os.path.join(self.package_folder, "include", "nlohmann", "json.hpp")):
            raise ConanException(f"{include_dir}/nlohmann/json.hpp not found")
        for doc in ("/usr/share/doc/nlohmann-json3-dev/copyright", os.path.join(include_dir, "..", "LICENSE.MIT")):
            if os.path.isfile(doc):
                copy(self, os.path.basename(doc), src=os.path.dirname(doc),
                     dst=os.path.join(self.package_folder, "licenses"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "nlohmann_json")
        self.cpp_info.set_property("cmake_target_name", "nlohmann_json::nlohmann_json")
        self.cpp_info.set_property("pkg_config_name", "nlohmann_json")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
