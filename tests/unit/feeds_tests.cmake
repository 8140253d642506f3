# Alert feeds (src/feeds): items from findings and their formats. Included from CMakeLists.txt.
teiten_test(feeds_test ${CMAKE_CURRENT_LIST_DIR}/feeds_test.cc)
target_link_libraries(feeds_test PRIVATE teiten_feeds nlohmann_json::nlohmann_json)
# Delivery: the real CLI against a receiver on 127.0.0.1 (cpp-httplib), openssl, a shell sendmail.
pkg_check_modules(TEST_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
teiten_test(feed_delivery_test ${CMAKE_CURRENT_LIST_DIR}/feed_delivery_test.cc)
target_link_libraries(feed_delivery_test PRIVATE teiten_feeds teiten_scenario_fixture nlohmann_json::nlohmann_json
  PkgConfig::TEST_HTTPLIB)
target_compile_definitions(feed_delivery_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(feed_delivery_test teiten)
# Notification lists: parsers and CSV by hand; the real CLI on ../shared captures against tshark.
teiten_test(notify_test ${CMAKE_CURRENT_LIST_DIR}/notify_test.cc)
target_link_libraries(notify_test PRIVATE teiten_feeds nlohmann_json::nlohmann_json)
target_compile_definitions(notify_test PRIVATE TEITEN_BIN="$<TARGET_FILE:teiten>")
add_dependencies(notify_test teiten)
