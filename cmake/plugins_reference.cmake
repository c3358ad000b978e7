# cmake/plugins_reference.cmake: docs/plugins-reference.md from the bundled
# plugins' own schemas (`ioloop-host --plugin-info X.so --markdown`), so the
# reference cannot drift from the code. Script mode:
#
#   cmake -DHOST=<ioloop-host> -DPLUGIN_DIR=<dir> -DPLUGINS=echo,status
#         -DDOC=<docs/plugins-reference.md> -DMODE=check|write
#         -P cmake/plugins_reference.cmake
#
# MODE=write rewrites DOC (the plugins-reference target); MODE=check fails,
# naming that target, when DOC differs (the plugins_reference ctest).

set(text "# Bundled plugins: config reference

Generated from each plugin's config schema by
`ioloop-host --plugin-info PLUGIN.so --markdown`: do not edit by hand.
After changing a schema, `cmake --build build --target plugins-reference`
rewrites this file; the `plugins_reference` test fails while it is out of
date. How durations, sizes and the other types are written, and what the
host says about a bad value: [plugins.md](plugins.md#config-schema).
")
string(REPLACE "," ";" plugins "${PLUGINS}")
foreach(plugin ${plugins})
  execute_process(
    COMMAND ${HOST} --plugin-info ${PLUGIN_DIR}/${plugin}.so --markdown
    OUTPUT_VARIABLE section
    ERROR_VARIABLE error
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "--plugin-info ${plugin}.so failed (${rc}): ${error}")
  endif()
  string(APPEND text "\n${section}")
endforeach()

include(${CMAKE_CURRENT_LIST_DIR}/generated_doc.cmake)
generated_doc(plugins-reference "${text}")
