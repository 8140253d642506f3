# Report charts as inline SVG (chart.h). Pure string building: no I/O, no dependencies beyond
# teiten_common (civil dates) and fmt.
add_library(teiten_chart STATIC chart.cc)
teiten_target(teiten_chart)
target_link_libraries(teiten_chart PUBLIC teiten_common fmt::fmt)
