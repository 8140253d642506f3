# The batch wire format (src/transport/wire.cc). Included from tests/unit/CMakeLists.txt.
teiten_test(wire_test ${CMAKE_CURRENT_LIST_DIR}/wire_test.cc)
target_link_libraries(wire_test PRIVATE teiten_transport teiten_capture PkgConfig::ZSTD PkgConfig::XXHASH)
teiten_test(spool_test ${CMAKE_CURRENT_LIST_DIR}/spool_test.cc)
target_link_libraries(spool_test PRIVATE teiten_transport)
teiten_test(collect_test ${CMAKE_CURRENT_LIST_DIR}/collect_test.cc)
target_link_libraries(collect_test PRIVATE teiten_daemon teiten_analysis)
