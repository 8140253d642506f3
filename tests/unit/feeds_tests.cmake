# Alert feeds (src/feeds): items from findings and their formats. Included from CMakeLists.txt.
teiten_test(feeds_test ${CMAKE_CURRENT_LIST_DIR}/feeds_test.cc)
target_link_libraries(feeds_test PRIVATE teiten_feeds nlohmann_json::nlohmann_json)
