# cmake/manifest_reference.cmake: docs/manifest-reference.md from the
# manifest's own schema (`ioloop-host --manifest-info --markdown`, the
# tables of host/app/manifest.c), so the reference cannot drift from the
# code. Script mode:
#
#   cmake -DHOST=<ioloop-host> -DDOC=<docs/manifest-reference.md>
#         -DMODE=check|write -P cmake/manifest_reference.cmake
#
# MODE=write rewrites DOC (the manifest-reference target); MODE=check fails,
# naming that target, when DOC differs (the manifest_reference ctest).

set(text "# The manifest: key reference

Generated from the manifest's schema (the tables of `host/app/manifest.c`)
by `ioloop-host --manifest-info --markdown`: do not edit by hand. After
changing a key, `cmake --build build --target manifest-reference` rewrites
this file; the `manifest_reference` test fails while it is out of date.
`log.plugins` names instances of `plugins`; `watchdog_kill_ms` needs
`workers`; instance names are unique. How the host reports a bad value,
and the rest of the process model: [operations.md](operations.md).

")
execute_process(
  COMMAND ${HOST} --manifest-info --markdown
  OUTPUT_VARIABLE table
  ERROR_VARIABLE error
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "--manifest-info failed (${rc}): ${error}")
endif()
string(APPEND text "${table}")

include(${CMAKE_CURRENT_LIST_DIR}/generated_doc.cmake)
generated_doc(manifest-reference "${text}")
