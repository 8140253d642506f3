# Trace generator tests (src/simulate). Included from tests/unit/CMakeLists.txt.
teiten_test(simulate_test simulate_test.cc)
target_link_libraries(simulate_test PRIVATE teiten_simulate PkgConfig::PCAP nlohmann_json::nlohmann_json)
# Scenarios (TOML, events, ground truth) and the simulate command.
teiten_test(simulate_scenario_test simulate_scenario_test.cc)
target_link_libraries(simulate_scenario_test PRIVATE teiten_simulate PkgConfig::PCAP
  PkgConfig::ZSTD nlohmann_json::nlohmann_json)
target_compile_definitions(simulate_scenario_test PRIVATE
  TEITEN_SOURCE_DIR_DEFAULT="${PROJECT_SOURCE_DIR}")
# The shared scenario fixture, and its own test.
include(${CMAKE_CURRENT_LIST_DIR}/scenario_fixture.cmake)
teiten_test(simulate_fixture_test simulate_fixture_test.cc)
target_link_libraries(simulate_fixture_test PRIVATE teiten_scenario_fixture teiten_analysis
  teiten_sensor teiten_store nlohmann_json::nlohmann_json)
# Each shipped scenario ingested ranks as its seed report does (slow: builds the fixture stores).
teiten_test(simulate_order_test LABEL slow simulate_order_test.cc)
target_link_libraries(simulate_order_test PRIVATE teiten_scenario_fixture teiten_analysis
  teiten_store)
