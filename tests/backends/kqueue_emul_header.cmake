# cmake -DCC=<compiler> -DFAKES=<tests/fakes> -DNAMES=<libkqueue.names>
#       [-DREAL=<libkqueue include dir>] -P kqueue_emul_header.cmake
#
# Fails if tests/fakes/sys/event.h (the libkqueue flavour kqueue.c is
# built against in CI) defines an EV_*, EVFILT_* or NOTE_* name that
# libkqueue's Linux <sys/event.h> lacks: NAMES lists libkqueue 2.7.0's.
# With REAL, also fails if NAMES is not exactly what that header defines.
# Names come from the preprocessor (-dM), not from reading the text.

# kqueue_names(<out var> <include dir>): the names <sys/event.h> defines.
function(kqueue_names out dir)
  execute_process(COMMAND ${CC} -dM -E -I${dir} -include sys/event.h
                          -x c /dev/null
                  OUTPUT_VARIABLE defs ERROR_VARIABLE err
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${dir}/sys/event.h: does not preprocess: ${err}")
  endif()
  string(REGEX MATCHALL "#define (EV_|EVFILT_|NOTE_)[A-Z0-9_]+" found
         "${defs}")
  list(TRANSFORM found REPLACE "#define " "")
  list(SORT found)
  set(${out} ${found} PARENT_SCOPE)
endfunction()

file(STRINGS ${NAMES} libkqueue)
kqueue_names(fake ${FAKES})
set(extra ${fake})
list(REMOVE_ITEM extra ${libkqueue})
if(extra)
  message(FATAL_ERROR "${FAKES}/sys/event.h: defines ${extra}, which "
                      "libkqueue's <sys/event.h> does not (${NAMES})")
endif()
if(NOT fake MATCHES "EVFILT_READ")
  message(FATAL_ERROR "${FAKES}/sys/event.h: no EVFILT_READ found")
endif()
if(DEFINED REAL)
  kqueue_names(real ${REAL})
  if(NOT real STREQUAL libkqueue)
    message(FATAL_ERROR "${NAMES}: differs from ${REAL}/sys/event.h, "
                        "which defines: ${real}")
  endif()
endif()
list(LENGTH fake n)
message(STATUS "${n} names in the fake <sys/event.h>, all in libkqueue's")
