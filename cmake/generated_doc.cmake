# cmake/generated_doc.cmake: the end both reference scripts share
# (plugins_reference.cmake, manifest_reference.cmake), in script mode.
#
# generated_doc(NAME TEXT): with MODE=write, rewrites DOC with TEXT (the
# NAME target); otherwise fails, naming that target, when DOC differs (the
# ctest), leaving TEXT in NAME.generated.md in the working directory (the
# build folder under ctest) for a diff.
function(generated_doc name text)
  if(MODE STREQUAL "write")
    file(WRITE ${DOC} "${text}")
    message(STATUS "wrote ${DOC}")
    return()
  endif()
  file(READ ${DOC} current)
  if(NOT current STREQUAL text)
    file(WRITE ${name}.generated.md "${text}")
    message(FATAL_ERROR
      "${DOC} differs from what generates it (the generated text is in "
      "${name}.generated.md): run `cmake --build <build> --target ${name}`")
  endif()
endfunction()
