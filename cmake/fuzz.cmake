# Fuzz build (-DTEITEN_FUZZ=ON, clang only): every library is compiled with libFuzzer's coverage
# instrumentation plus ASan and UBSan, so the fuzzers see the edges of the code they test; each
# target in src/fuzz then links libFuzzer's driver with -fsanitize=fuzzer. Use a separate build
# directory (scripts/fuzz.sh uses build-fuzz): these flags are for every object in it.
option(TEITEN_FUZZ "Build libFuzzer targets (needs clang)" OFF)
if(TEITEN_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TEITEN_FUZZ needs clang: -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang")
  endif()
  set(TEITEN_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined -g)
  add_compile_options(${TEITEN_FUZZ_FLAGS})
  add_link_options(-fsanitize=address,undefined)
endif()
