# Conan 2 recipe for weft, a header-only library: the package holds include/ (installed by weft's
# own CMake install rules) and the license; CMakeDeps gives consumers find_package(weft) and the
# target weft::weft (plus the alias weft::openmp with -o weft/*:openmp=True, the default).
#
#   conan create . -s compiler.cppstd=20                 # builds and runs test_package/
#   conan create . -s compiler.cppstd=20 -o "weft/*:openmp=False"
#
# Offline (no ConanCenter), first package the system's nlohmann/json:
#   conan create scripts/conan/nlohmann_json
# The version is kept equal to CMakeLists.txt, include/weft/version.hpp and the vcpkg manifests by
# tests/core/test_version.cpp.
import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir

required_conan_version = ">=2.0"


class WeftConan(ConanFile):
    name = "weft"
    version = "0.1.0"
    description = "Header-only C++20 tensors and transformer blocks for running Llama-class models"
    license = "MIT"
    topics = ("tensor", "expression-templates", "simd", "llm", "llama", "transformer", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "openmp": [True, False],  # multi-threaded kernels: weft::weft gets the compiler's OpenMP flags
        "cuda": [True, False],    # the CUDA backend; the toolkit itself comes from the system
    }
    default_options = {"openmp": True, "cuda": False}
    exports_sources = "include/*", "cmake/*", "CMakeLists.txt", "LICENSE"
    no_copy_source = True

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # weft's headers include <nlohmann/json.hpp>, so consumers need its headers too.
        self.requires("nlohmann_json/[>=3.11 <3.12]", transitive_headers=True)
        if self.options.openmp and self.settings.compiler == "apple-clang":
            # Apple's clang ships no OpenMP runtime; GCC, clang (with libomp) and MSVC have one.
            self.requires("llvm-openmp/[>=17 <21]", transitive_headers=True, transitive_libs=True)

    def package_id(self):
        # Headers only: one package for every setting and option. Options change only what
        # package_info() tells consumers (flags, requirements), never the packaged files.
        self.info.clear()

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)
        if self.options.cuda and self.settings.os not in ("Linux", "Windows"):
            raise ConanInvalidConfiguration("weft: the CUDA backend needs Linux or Windows")

    def generate(self):
        # Only to run weft's install rules (find_package(nlohmann_json) at configure time).
        tc = CMakeToolchain(self)
        tc.cache_variables["WEFT_BUILD_TESTS"] = False
        tc.cache_variables["WEFT_BUILD_EXAMPLES"] = False
        tc.cache_variables["WEFT_BUILD_BENCH"] = False
        tc.cache_variables["WEFT_CUDA"] = "OFF"  # the headers are installed either way; no nvcc needed
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()

    def package(self):
        copy(self, "LICENSE", src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # CMakeDeps writes the consumers' weft-config.cmake from package_info(); drop weft's own
        # (and the license copy under share/doc, which is in licenses/ already).
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "weft")
        self.cpp_info.set_property("cmake_target_name", "weft::weft")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        if self.options.openmp:
            # weft's CMake build has weft::openmp = weft::weft + OpenMP; here the option puts
            # OpenMP on weft::weft and weft::openmp names the same target, so CMake code written
            # for either way of getting weft links the same way.
            self.cpp_info.set_property("cmake_target_aliases", ["weft::openmp"])
            compiler = str(self.settings.compiler)
            if compiler == "msvc":
                self.cpp_info.cxxflags.append("/openmp:llvm")
            elif compiler in ("gcc", "clang", "intel-cc"):
                self.cpp_info.cxxflags.append("-fopenmp")
                self.cpp_info.sharedlinkflags.append("-fopenmp")
                self.cpp_info.exelinkflags.append("-fopenmp")
            # apple-clang: llvm-openmp (a requirement above) carries its own flags.
        if self.options.cuda:
            # As weft's CMake target weft::cuda: the CUDA runtime and cuBLAS, from the system's
            # CUDA toolkit (not a Conan package). CUDA sources are compiled by the consumer's nvcc
            # (CMake: enable_language(CUDA), C++20).
            self.cpp_info.system_libs.extend(["cudart", "cublas", "cublasLt"])
