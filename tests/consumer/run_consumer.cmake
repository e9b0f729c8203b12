# Builds and runs tests/consumer/project against weft, as a user would.
#   -DMODE=find_package|subdirectory -DWEFT_SOURCE_DIR=... -DWEFT_BUILD_DIR=... -DWORK_DIR=...
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "failed (${rc}): ${ARGV}")
    endif()
endfunction()

set(args -S ${WEFT_SOURCE_DIR}/tests/consumer/project -B ${WORK_DIR}/build -DWEFT_CONSUMER_MODE=${MODE}
         -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package")
    run(${CMAKE_COMMAND} --install ${WEFT_BUILD_DIR} --prefix ${WORK_DIR}/prefix)
    if(NOT EXISTS ${WORK_DIR}/prefix/share/cmake/weft/weftConfigVersion.cmake)
        message(FATAL_ERROR "install did not produce weftConfigVersion.cmake")
    endif()
    list(APPEND args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
    list(APPEND args -DWEFT_SOURCE_DIR=${WEFT_SOURCE_DIR})
endif()
run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/app)
if(EXISTS ${WORK_DIR}/build/app_openmp)
    run(${WORK_DIR}/build/app_openmp)
endif()
