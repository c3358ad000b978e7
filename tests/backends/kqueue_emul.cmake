# backends/kqueue.c built against the kqueue emulation in tests/fakes
# (kqueue_emul.c, sys/event.h), so that every Linux CI run puts the kqueue
# backend through the conformance suite. Included by
# tests/backends/CMakeLists.txt after its foreach. Two flavours:
#
#   kqueue_emul          <sys/event.h> declares what libkqueue's does, no
#                        more (no NOTE_LOWAT, no kqueue1): so kqueue.c does
#                        not build if it uses a name libkqueue lacks, and
#                        its fallbacks run.
#   kqueue_emul_freebsd  FreeBSD's <sys/event.h>, with NOTE_LOWAT, kqueue1.
#
# Each runs the suite in the ways libkqueue differs, one at a time and all
# together (IOLOOP_KQUEUE_EMUL, see kqueue_emul.c). The modules keep the
# name kqueue.so (the suite checks that the file, the name field and its
# argument agree) but land in <build>/tests/backends-emul*/, out of the
# host's backend dir. test_kqueue_emul_header checks the header's names
# against tests/fakes/sys/libkqueue.names, and that list against the real
# header when pkg-config finds libkqueue.
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
  return()
endif()

# kqueue_emul_module(<target> <output dir> [<compile definitions>...])
function(kqueue_emul_module target dir)
  ioloop_module(${target} BACKEND
                ${CMAKE_SOURCE_DIR}/backends/kqueue.c
                ${CMAKE_SOURCE_DIR}/tests/fakes/kqueue_emul.c)
  target_include_directories(${target} BEFORE PRIVATE
                             ${CMAKE_SOURCE_DIR}/tests/fakes)
  target_compile_definitions(${target} PRIVATE ${ARGN})
  target_link_libraries(${target} PRIVATE Threads::Threads)
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME kqueue
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/${dir})
  add_dependencies(test_backend_conformance ${target})
endfunction()

# kqueue_emul_test(<suffix> <target> <IOLOOP_KQUEUE_EMUL> [<VAR=value>...])
function(kqueue_emul_test suffix target quirks)
  add_test(NAME test_backend_conformance_${suffix}
           COMMAND test_backend_conformance kqueue $<TARGET_FILE:${target}>)
  set_tests_properties(test_backend_conformance_${suffix} PROPERTIES
    TIMEOUT 120 ENVIRONMENT "IOLOOP_KQUEUE_EMUL=${quirks};${ARGN}")
endfunction()

kqueue_emul_module(kqueue_emul backends-emul)
kqueue_emul_module(kqueue_emul_freebsd backends-emul-freebsd
                   IOLOOP_KQUEUE_EMUL_FREEBSD IOLOOP_HAVE_KQUEUE1)

# libkqueue reads SO_ERROR itself, which clears it (docs/backends.md).
set(consumed IOLOOP_TEST_SO_ERROR_CONSUMED=1)
kqueue_emul_test(kqueue_emul kqueue_emul "")
kqueue_emul_test(kqueue_emul_eof_fflags kqueue_emul eof-fflags)
kqueue_emul_test(kqueue_emul_so_error kqueue_emul so-error ${consumed})
kqueue_emul_test(kqueue_emul_efault kqueue_emul efault)
kqueue_emul_test(kqueue_emul_no_modify kqueue_emul no-modify)
kqueue_emul_test(kqueue_emul_libkqueue kqueue_emul libkqueue ${consumed})
kqueue_emul_test(kqueue_emul_freebsd kqueue_emul_freebsd "")
kqueue_emul_test(kqueue_emul_freebsd_eof_fflags kqueue_emul_freebsd
                 eof-fflags)

set(real "")
if(LIBKQUEUE_FOUND)
  set(real -DREAL=${LIBKQUEUE_INCLUDE_DIRS})
endif()
add_test(NAME test_kqueue_emul_header
         COMMAND ${CMAKE_COMMAND} -DCC=${CMAKE_C_COMPILER}
                 -DFAKES=${CMAKE_SOURCE_DIR}/tests/fakes
                 -DNAMES=${CMAKE_SOURCE_DIR}/tests/fakes/sys/libkqueue.names
                 ${real}
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/kqueue_emul_header.cmake)
