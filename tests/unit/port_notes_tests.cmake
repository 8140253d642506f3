# Port knowledge base tests (src/enrich/port_notes.cc, data/ports.toml). Included from
# tests/unit/CMakeLists.txt. Links the simulator to read the shipped scenarios' ports.
teiten_test(port_notes_test ${CMAKE_CURRENT_LIST_DIR}/port_notes_test.cc)
target_link_libraries(port_notes_test PRIVATE teiten_enrich teiten_simulate GTest::gmock)
