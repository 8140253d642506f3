# Notable phenomena (src/analysis/findings) against the shipped scenarios' planted events, and the
# statistics they rest on. One source built twice: the statistics and the small scenario (seconds),
# and the TSUBAME quarters and the TALOT2 month (slow: their fixture stores take minutes to build
# when the stamp changes; detection itself takes about a second). Included from
# tests/unit/CMakeLists.txt; the scenario fixture comes from simulate_tests.cmake.
teiten_test(findings_test findings_test.cc)
target_link_libraries(findings_test PRIVATE teiten_findings teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
teiten_test(findings_scenario_test LABEL slow findings_test.cc)
target_compile_definitions(findings_scenario_test PRIVATE TEITEN_FINDINGS_QUARTERS)
target_link_libraries(findings_scenario_test PRIVATE teiten_findings teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
# Issue 14: dating on a scenario of its own (tests/unit/scenarios/dating.toml: boundary steps,
# near-baseline noise, ports from zero), all sensors and each group.
teiten_test(findings_dating_test findings_dating_test.cc)
target_link_libraries(findings_dating_test PRIVATE teiten_findings teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
# Outages (SPEC A11): the detector by hand, and on a quarter with five planted silences
# (tests/unit/scenarios/outages.toml), by country and by AS, the findings and the CLI.
teiten_test(outages_test outages_test.cc)
target_link_libraries(outages_test PRIVATE teiten_findings teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
target_compile_definitions(outages_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(outages_test teiten)
