# tests/docs/check_plugin_docs.cmake: fails when docs/plugins.md misses a
# member of struct ioloop_plugin or struct ioloop_api (api/ioloop/plugin.h),
# so the reference cannot drift from the header.
#
#   cmake -DHEADER=api/ioloop/plugin.h -DDOC=docs/plugins.md -P this-file
#
# A member counts as documented when the doc shows it in code: `name`,
# `name(...)` or `name = ...`.

file(READ "${HEADER}" header)
file(READ "${DOC}" doc)
# Comments hold words in parentheses that are no members: drop them.
string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" "" header "${header}")

set(missing "")
set(total 0)
foreach(name ioloop_plugin ioloop_api)
  string(REGEX MATCH "struct ${name} {[^}]*}" body "${header}")
  if(body STREQUAL "")
    message(FATAL_ERROR "${HEADER}: struct ${name} not found")
  endif()
  # Function pointers: (*member)(...); fields: type member; (the ';'
  # becomes '@' first: a ';' would split a CMake list item).
  string(REPLACE ";" "@" body "${body}")
  string(REGEX MATCHALL "\\(\\*[a-z_0-9]+\\)" pointers "${body}")
  string(REGEX MATCHALL "[ *][a-z_0-9]+@" fields "${body}")
  set(members "")
  foreach(m IN LISTS pointers fields)
    string(REGEX REPLACE "[()*@ ]" "" m "${m}")
    list(APPEND members "${m}")
  endforeach()
  foreach(m IN LISTS members)
    math(EXPR total "${total} + 1")
    string(FIND "${doc}" "`${m}`" a)
    string(FIND "${doc}" "`${m}(" b)
    string(FIND "${doc}" "`${m} =" c)
    if(a EQUAL -1 AND b EQUAL -1 AND c EQUAL -1)
      list(APPEND missing "struct ${name}.${m}")
    endif()
  endforeach()
endforeach()

if(total LESS 10)
  message(FATAL_ERROR "${HEADER}: found only ${total} members: the "
                      "extraction is broken")
endif()
if(missing)
  list(JOIN missing ", " shown)
  message(FATAL_ERROR "${DOC} does not document: ${shown}")
endif()
message(STATUS "${DOC} documents all ${total} members of ${HEADER}")
