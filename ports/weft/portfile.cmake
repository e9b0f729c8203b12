# vcpkg port of weft (header-only). Where the sources come from:
#   - this port inside a weft checkout (ports/weft/ two levels below the root): that checkout, as it
#     is. For developing and testing weft's packaging:
#         vcpkg install weft --overlay-ports=<checkout>/ports --no-binarycaching
#     (vcpkg hashes the port files, not the checkout, so without --no-binarycaching an edited
#     checkout can be answered from the binary cache);
#   - WEFT_SOURCE_DIR (cache variable from a triplet, or environment variable): another checkout;
#   - otherwise (the port copied into a registry): the release tarball from GitHub; fill in REPO
#     and SHA512 when publishing (vcpkg prints the right SHA512 on the first, failing, download).
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is enough

if(NOT DEFINED WEFT_SOURCE_DIR AND DEFINED ENV{WEFT_SOURCE_DIR})
    set(WEFT_SOURCE_DIR "$ENV{WEFT_SOURCE_DIR}")
endif()
if(NOT DEFINED WEFT_SOURCE_DIR AND EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../include/weft/version.hpp")
    get_filename_component(WEFT_SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
endif()
if(DEFINED WEFT_SOURCE_DIR)
    if(NOT EXISTS "${WEFT_SOURCE_DIR}/include/weft/version.hpp")
        message(FATAL_ERROR "weft: WEFT_SOURCE_DIR='${WEFT_SOURCE_DIR}' is not a weft checkout (no include/weft/version.hpp)")
    endif()
    message(STATUS "weft: building the local checkout ${WEFT_SOURCE_DIR}")
    set(SOURCE_PATH "${WEFT_SOURCE_DIR}")
else()
    vcpkg_from_github(
        OUT_SOURCE_PATH SOURCE_PATH
        REPO weft-project/weft  # TODO at the first release: the real repository
        REF "v${VERSION}"
        SHA512 0
        HEAD_REF main
    )
endif()

# openmp: require OpenMP (weft::openmp); without the feature, do not look for it, so only
# weft::weft is installed. cuda: weft's CUDA backend (option WEFT_CUDA).
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        openmp CMAKE_REQUIRE_FIND_PACKAGE_OpenMP
        cuda   WEFT_CUDA
    INVERTED_FEATURES
        openmp CMAKE_DISABLE_FIND_PACKAGE_OpenMP
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DWEFT_BUILD_TESTS=OFF
        -DWEFT_BUILD_EXAMPLES=OFF
        -DWEFT_BUILD_BENCH=OFF
    MAYBE_UNUSED_VARIABLES
        WEFT_CUDA
        CMAKE_REQUIRE_FIND_PACKAGE_OpenMP
        CMAKE_DISABLE_FIND_PACKAGE_OpenMP
)
vcpkg_cmake_install()
# weft installs its package config to share/cmake/weft; vcpkg wants share/weft.
vcpkg_cmake_config_fixup(PACKAGE_NAME weft CONFIG_PATH share/cmake/weft)

# share/doc/weft/LICENSE: the copyright file below replaces it.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc" "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/lib")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
