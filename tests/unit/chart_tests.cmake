# Report charts (src/report/chart.h): geometry, ticks, escaping, XML well-formedness (xmllint).
teiten_test(chart_test chart_test.cc)
target_link_libraries(chart_test PRIVATE teiten_chart)
# The same charts rendered by headless Chromium (skipped without it): pixels, glyphs, layout.
teiten_test(chart_render_test LABEL slow chart_render_test.cc)
target_link_libraries(chart_render_test PRIVATE teiten_chart ZLIB::ZLIB)
