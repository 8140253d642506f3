# `teiten serve` (src/web, issue 13): the real server process asked with curl, numbers against
# the CLI's; the headless Chromium pass over the pages is its own slow test.
teiten_test(web_test web_test.cc)
target_link_libraries(web_test PRIVATE teiten_scenario_fixture nlohmann_json::nlohmann_json)
target_compile_definitions(web_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(web_test teiten)
teiten_test(web_browser_test LABEL slow web_browser_test.cc)
target_link_libraries(web_browser_test PRIVATE teiten_scenario_fixture nlohmann_json::nlohmann_json)
target_compile_definitions(web_browser_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(web_browser_test teiten)
# Answers a new snapshot takes over from the one before it, against answers made afresh.
teiten_test(web_carry_test web_carry_test.cc)
target_link_libraries(web_carry_test PRIVATE teiten_web teiten_ingest)
