# Reports (src/report). Whole reports run the real CLI on the small scenario's store; the
# Chromium rendering is its own slow test.
teiten_test(report_test report_test.cc)
target_link_libraries(report_test PRIVATE teiten_report teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
target_compile_definitions(report_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(report_test teiten)
teiten_test(report_render_test LABEL slow report_render_test.cc)
target_link_libraries(report_render_test PRIVATE teiten_report teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
target_compile_definitions(report_render_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(report_render_test teiten)
# Issue 14: sentences against the store's numbers, both languages, groups; the JSON report.
teiten_test(report_sentences_test report_test_sentences.cc)
target_link_libraries(report_sentences_test PRIVATE teiten_report teiten_scenario_fixture
  nlohmann_json::nlohmann_json)
target_compile_definitions(report_sentences_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(report_sentences_test teiten)
