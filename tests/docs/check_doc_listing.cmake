# tests/docs/check_doc_listing.cmake: fails when a listing of DOC marked
#
#   <!-- listing: FILE -->
#   ```c
#   ...
#   ```
#
# differs from FILE (relative to SOURCE_DIR), or when FILE has MAX_LINES
# lines or more (the tutorial promises fewer), so the doc cannot drift
# from the code ctest builds and runs.
#
#   cmake -DDOC=docs/plugins.md -DSOURCE_DIR=. -DFILE=examples/json_api/kv.c
#         -DMAX_LINES=60 -P this-file

file(READ "${DOC}" doc)
file(READ "${SOURCE_DIR}/${FILE}" source)
set(marker "<!-- listing: ${FILE} -->\n```c\n")
string(FIND "${doc}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${DOC}: no listing of ${FILE} (a line "
                      "\"<!-- listing: ${FILE} -->\" then a ```c block)")
endif()
string(LENGTH "${marker}" skip)
math(EXPR at "${at} + ${skip}")
string(SUBSTRING "${doc}" ${at} -1 rest)
string(FIND "${rest}" "```\n" end)
if(end EQUAL -1)
  message(FATAL_ERROR "${DOC}: the listing of ${FILE} does not end")
endif()
string(SUBSTRING "${rest}" 0 ${end} listing)
if(NOT listing STREQUAL source)
  message(FATAL_ERROR "${DOC}: the listing of ${FILE} differs from the "
                      "file: copy the file into it")
endif()
string(REGEX MATCHALL "\n" newlines "${source}")
list(LENGTH newlines lines)
if(NOT lines LESS MAX_LINES)
  message(FATAL_ERROR "${FILE}: ${lines} lines, not under ${MAX_LINES}")
endif()
message(STATUS "${DOC}: the listing of ${FILE} is the file (${lines} lines)")
