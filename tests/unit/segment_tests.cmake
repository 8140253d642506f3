# Segment encoding tests (src/store/segment.cc). Included from tests/unit/CMakeLists.txt.
teiten_test(segment_test ${CMAKE_CURRENT_LIST_DIR}/segment_test.cc)
target_link_libraries(segment_test PRIVATE teiten_store)
