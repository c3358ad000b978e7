# The JSON path locator (host/runtime/json_path.c) on arbitrary text, and
# against jansson's own reading of the documents it accepts.
ioloop_add_fuzzer(json_path
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_json_path.c
  LIBS ioloop_runtime PkgConfig::JANSSON)
