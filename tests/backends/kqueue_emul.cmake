# backends/kqueue.c built against the kqueue emulation in tests/fakes
# (kqueue_emul.c, sys/event.h), so that every Linux CI run puts the kqueue
# backend through the conformance suite. Included by
# tests/backends/CMakeLists.txt after its foreach.
#
# The module is test-only: it keeps the name kqueue.so (the suite checks
# that the file, the name field and its argument agree) but lands in
# <build>/tests/backends-emul/, out of the host's backend dir, and its ctest
# entry is test_backend_conformance_kqueue_emul.
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  return()
endif()

ioloop_module(kqueue_emul BACKEND
              ${CMAKE_SOURCE_DIR}/backends/kqueue.c
              ${CMAKE_SOURCE_DIR}/tests/fakes/kqueue_emul.c)
target_include_directories(kqueue_emul BEFORE PRIVATE
                           ${CMAKE_SOURCE_DIR}/tests/fakes)
target_link_libraries(kqueue_emul PRIVATE Threads::Threads)
set_target_properties(kqueue_emul PROPERTIES
  OUTPUT_NAME kqueue
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/backends-emul)

add_test(NAME test_backend_conformance_kqueue_emul
         COMMAND test_backend_conformance kqueue $<TARGET_FILE:kqueue_emul>)
set_tests_properties(test_backend_conformance_kqueue_emul
                     PROPERTIES TIMEOUT 120)
add_dependencies(test_backend_conformance kqueue_emul)
