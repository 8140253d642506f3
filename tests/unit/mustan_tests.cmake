# MUSTAN views (src/analysis/mustan) on the dating scenario's store. Included from
# tests/unit/CMakeLists.txt; the scenario fixture comes from simulate_tests.cmake.
teiten_test(mustan_test mustan_test.cc)
target_link_libraries(mustan_test PRIVATE teiten_analysis teiten_scenario_fixture)
