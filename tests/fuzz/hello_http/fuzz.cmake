# tests/fuzz/hello_http: hello_http's connection handling (conn.c) on the
# host's loop core and the epoll backend, through a socketpair, the input
# whole, in 1-17-byte pieces and through minimal socket buffers; the
# three must answer alike. The plugin and the backend are compiled in:
# their entry symbols (ioloop_plugin_v1, ioloop_backend_v1) do not clash.
ioloop_add_fuzzer(hello_http
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/harness.c
    ${CMAKE_SOURCE_DIR}/plugins/hello_http/plugin.c
    ${CMAKE_SOURCE_DIR}/plugins/hello_http/config.c
    ${CMAKE_SOURCE_DIR}/plugins/hello_http/conn.c
    ${CMAKE_SOURCE_DIR}/plugins/http_common/http_limits.c
    ${CMAKE_SOURCE_DIR}/backends/epoll.c
  LIBS ioloop_runtime ${HTTP_PARSER_LIBRARY} PkgConfig::JANSSON m
  INCLUDES ${CMAKE_SOURCE_DIR}/plugins/hello_http ${HTTP_PARSER_INCLUDE_DIR})
