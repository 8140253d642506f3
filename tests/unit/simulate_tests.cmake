# Trace generator tests (src/simulate). Included from tests/unit/CMakeLists.txt.
teiten_test(simulate_test simulate_test.cc)
target_link_libraries(simulate_test PRIVATE teiten_simulate PkgConfig::PCAP nlohmann_json::nlohmann_json)
