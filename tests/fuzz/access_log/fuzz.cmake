# The access log (host/runtime/http_access_log.c) with arbitrary bytes as
# the strings a client controls; every line read back.
ioloop_add_fuzzer(access_log
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_access_log.c
  LIBS ioloop_runtime PkgConfig::JANSSON)
