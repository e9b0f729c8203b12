# Conan's check of the weft package: builds main.cpp against the packaged headers through
# CMakeDeps (find_package(weft), weft::weft) and runs it. test_package/CMakeLists.txt also works
# with a plain `cmake --install` prefix (CMAKE_PREFIX_PATH), which is how CI checks it without
# Conan (cmake/PackagingTests.cmake).
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class WeftTestPackageConan(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"
    test_type = "explicit"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def test(self):
        if can_run(self):
            self.run(os.path.join(self.cpp.build.bindir, "test_package"), env="conanrun")
