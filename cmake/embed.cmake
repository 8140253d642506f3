# teiten_embed(OUT_CC SYMBOL FILE): compiles a data file into the binary as a string_view, so
# that data kept in data/ (country names, port explanations) needs no install path at run time.
function(teiten_embed out_cc symbol file)
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cc)
  add_custom_command(OUTPUT ${gen}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${gen} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${file} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake)
  set(${out_cc} ${gen} PARENT_SCOPE)
endfunction()
