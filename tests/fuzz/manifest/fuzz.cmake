# The manifest parser (host/app/manifest.c) from arbitrary bytes.
ioloop_add_fuzzer(manifest
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_manifest.c
  LIBS ioloop_app)
