# The row analyses (issue 12): scans, DoS backscatter and payloads on stores built in the test
# from hand-made captures. Included from tests/unit/CMakeLists.txt.
foreach(t scans_test dos_test payloads_test)
  teiten_test(${t} ${t}.cc)
  target_link_libraries(${t} PRIVATE teiten_ingest teiten_analysis)
endforeach()
