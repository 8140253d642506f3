# The row analyses (issue 12): scans, DoS backscatter and payloads on stores built in the test
# from hand-made captures. Included from tests/unit/CMakeLists.txt.
# The tests spell packets and options as designated initializers naming only the fields that
# matter; the others keep their defaults on purpose.
foreach(t scans_test dos_test payloads_test)
  teiten_test(${t} ${t}.cc)
  target_link_libraries(${t} PRIVATE teiten_ingest teiten_analysis)
  target_compile_options(${t} PRIVATE -Wno-missing-field-initializers)
endforeach()
# dos_test also checks the generator's planted attacks (its ground truth).
target_link_libraries(dos_test PRIVATE teiten_simulate teiten_report)
# OS guesses: p0f's signature file (Debian's /etc/p0f/p0f.fp) and p0f itself as the reference.
teiten_test(os_guesses_test os_guesses_test.cc)
target_link_libraries(os_guesses_test PRIVATE teiten_ingest teiten_analysis)
target_compile_options(os_guesses_test PRIVATE -Wno-missing-field-initializers)
# Tool tags: hand-built packets, and the simulator's ground truth through the scenario fixture.
teiten_test(tools_test tools_test.cc)
target_link_libraries(tools_test PRIVATE teiten_ingest teiten_analysis teiten_feeds
  teiten_scenario_fixture)
target_compile_options(tools_test PRIVATE -Wno-missing-field-initializers)
