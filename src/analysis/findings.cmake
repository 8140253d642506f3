# Notable phenomena (SPEC A6): spikes, rises, top-10 entries, dominant sources, ports moving
# together, regions entering the top 5 or going silent. Included from CMakeLists.txt here.
add_library(teiten_findings STATIC ${CMAKE_CURRENT_LIST_DIR}/findings.cc)
teiten_target(teiten_findings)
target_link_libraries(teiten_findings PUBLIC teiten_analysis PRIVATE fmt::fmt)
