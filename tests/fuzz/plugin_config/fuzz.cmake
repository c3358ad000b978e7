# Each bundled plugin's config through what --check runs (setup + every
# init and fini with listen helpers that bind nothing).
ioloop_add_fuzzer(plugin_config
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_plugin_config.c
  LIBS ioloop_app)
foreach(t fuzz_plugin_config fuzz_plugin_config_replay)
  if(TARGET ${t})
    add_dependencies(${t} epoll echo hello_http status)
  endif()
endforeach()
