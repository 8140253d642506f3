add_library(teiten_report STATIC document.cc words.cc gather.cc compose.cc compose_findings.cc
  write.cc json.cc)
teiten_target(teiten_report)
target_link_libraries(teiten_report PUBLIC teiten_findings teiten_analysis teiten_chart
  teiten_enrich teiten_output fmt::fmt
  PRIVATE nlohmann_json::nlohmann_json)
