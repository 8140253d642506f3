# The shared scenario fixture (tests/unit/scenario_fixture.h): a shipped scenario simulated and
# ingested once per build tree. Link teiten_scenario_fixture to use it. Included from
# tests/unit/simulate_tests.cmake.
add_library(teiten_scenario_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/scenario_fixture.cc)
teiten_target(teiten_scenario_fixture)
target_include_directories(teiten_scenario_fixture PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(teiten_scenario_fixture PUBLIC teiten_common
  PRIVATE teiten_ingest teiten_simulate fmt::fmt)
# The stamp covers the code that decides the bytes of traces and stores.
set(_fixture_libs teiten_simulate teiten_capture teiten_enrich teiten_sensor teiten_store
  teiten_ingest)
set(_fixture_lib_files "")
foreach(lib ${_fixture_libs})
  string(APPEND _fixture_lib_files "$<TARGET_FILE:${lib}>|")
endforeach()
# TEITEN_SOURCE_DIR_BUILT as in teiten_test, so that test_support.h's SourceDir() and CountryDb()
# name the source tree here too (not the working directory).
target_compile_definitions(teiten_scenario_fixture PRIVATE
  TEITEN_SOURCE_DIR_BUILT="${PROJECT_SOURCE_DIR}"
  TEITEN_FIXTURE_BINARY_DIR="${PROJECT_BINARY_DIR}"
  "TEITEN_FIXTURE_LIBS=\"${_fixture_lib_files}\"")
add_dependencies(teiten_scenario_fixture ${_fixture_libs})
