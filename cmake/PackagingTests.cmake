# ctest tests for weft's packaging that need neither vcpkg nor Conan (label: packaging).
# Included from tests/CMakeLists.txt; scripts/check-packaging.sh runs the same checks without a
# test build.
#   packaging_test_package            test_package/ (Conan's test) built against `cmake --install`
#                                      with plain find_package, and run
#   packaging_vcpkg_manifest_*        vcpkg.json and ports/weft/vcpkg.json against vcpkg's schema
#   packaging_vcpkg_port[_no_openmp]  ports/weft/portfile.cmake run with stand-ins for vcpkg's
#                                      functions; the package's layout checked
#   packaging_recipes_parse           the Conan recipes parse as Python, the manifests as strict
#                                      JSON (only where python3 is installed)
# The versions in the manifests and conanfile.py are checked by tests/core/test_version.cpp.
set(weft_packaging_dir ${CMAKE_CURRENT_BINARY_DIR}/packaging)

add_test(NAME packaging_test_package
         COMMAND ${CMAKE_COMMAND} -DMODE=find_package -DWEFT_SOURCE_DIR=${PROJECT_SOURCE_DIR}
                 -DWEFT_BUILD_DIR=${PROJECT_BINARY_DIR} -DWORK_DIR=${weft_packaging_dir}/test_package
                 -DPROJECT_DIR=${PROJECT_SOURCE_DIR}/test_package -DPROGRAMS=test_package
                 -P ${PROJECT_SOURCE_DIR}/tests/consumer/run_consumer.cmake)

add_test(NAME packaging_vcpkg_manifest_port
         COMMAND ${CMAKE_COMMAND} -DMANIFEST=${PROJECT_SOURCE_DIR}/ports/weft/vcpkg.json -DPORT=ON
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckVcpkgManifest.cmake)
add_test(NAME packaging_vcpkg_manifest_dev
         COMMAND ${CMAKE_COMMAND} -DMANIFEST=${PROJECT_SOURCE_DIR}/vcpkg.json
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckVcpkgManifest.cmake)

add_test(NAME packaging_vcpkg_port
         COMMAND ${CMAKE_COMMAND} -DWEFT_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DWORK_DIR=${weft_packaging_dir}/port
                 -P ${PROJECT_SOURCE_DIR}/cmake/CheckVcpkgPort.cmake)
add_test(NAME packaging_vcpkg_port_no_openmp
         COMMAND ${CMAKE_COMMAND} -DWEFT_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DWORK_DIR=${weft_packaging_dir}/port_no_openmp
                 -DFEATURES=core -P ${PROJECT_SOURCE_DIR}/cmake/CheckVcpkgPort.cmake)
set(weft_packaging_tests packaging_test_package packaging_vcpkg_manifest_port packaging_vcpkg_manifest_dev
    packaging_vcpkg_port packaging_vcpkg_port_no_openmp)

find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
    add_test(NAME packaging_recipes_parse
             COMMAND Python3::Interpreter -c
                     "import ast, json, sys\nfor f in sys.argv[1:]:\n    text = open(f).read()\n    ast.parse(text, f) if f.endswith('.py') else json.loads(text)\n    print('parses:', f)"
                     conanfile.py test_package/conanfile.py scripts/conan/nlohmann_json/conanfile.py
                     vcpkg.json ports/weft/vcpkg.json
             WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    list(APPEND weft_packaging_tests packaging_recipes_parse)
else()
    message(STATUS "weft: python3 not found; the Conan recipes are not syntax-checked (test packaging_recipes_parse)")
endif()
set_tests_properties(${weft_packaging_tests} PROPERTIES LABELS packaging)
