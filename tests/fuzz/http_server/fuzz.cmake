# tests/fuzz/http_server: the host's HTTP server (host/runtime/http_*.c)
# on the loop core and the epoll backend, through a socketpair: a real
# connection of a real server, the input whole, in 1-17-byte pieces and
# through minimal socket buffers; the three must answer alike.
ioloop_add_fuzzer(http_server
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/harness.c
    ${CMAKE_SOURCE_DIR}/backends/epoll.c
  LIBS ioloop_runtime ${HTTP_PARSER_LIBRARY} m
  INCLUDES ${HTTP_PARSER_INCLUDE_DIR})
