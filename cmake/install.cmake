# cmake/install.cmake: `cmake --install <build> --prefix P` lays out an
# installed host and the plugin SDK:
#
#   P/bin/ioloop-host
#   P/lib/ioloop/backends/<every backend in IOLOOP_BACKENDS>.so
#   P/lib/ioloop/plugins/<every plugin module defined under plugins/>.so
#   P/etc/ioloop/host.json            the default manifest
#   P/include/ioloop/*.h              the SDK headers
#   P/lib/libioloop_testing.so        plugin unit tests on the real loop
#   P/lib/pkgconfig/ioloop-testing.pc pkg-config --libs ioloop-testing
#   P/lib/pkgconfig/ioloop.pc         pkg-config --cflags ioloop
#   P/lib/cmake/ioloop/               find_package(ioloop)
#
# The host finds its backends, plugins and manifest relative to its own
# executable (host/app/paths.c), so the tree can live under any prefix. Test
# modules (targets under tests/) are never installed. Plain `lib`, not
# GNUInstallDirs: the host's search paths do not know multiarch folders.

include(CMakePackageConfigHelpers)

set(sdk_out ${CMAKE_BINARY_DIR}/sdk) # generated files
set(IOLOOP_INSTALL_BINDIR bin)
set(IOLOOP_INSTALL_INCLUDEDIR include)
set(IOLOOP_INSTALL_LIBDIR lib)
set(IOLOOP_INSTALL_BACKENDDIR lib/ioloop/backends)
set(IOLOOP_INSTALL_PLUGINDIR lib/ioloop/plugins)
set(IOLOOP_INSTALL_CONFDIR etc/ioloop)
set(IOLOOP_INSTALL_PKGCONFIGDIR lib/pkgconfig)
set(IOLOOP_INSTALL_CMAKEDIR lib/cmake/ioloop)

# ioloop__module_targets(<var> <dir>): the MODULE targets defined in source
# folder <dir> and its subfolders.
function(ioloop__module_targets var dir)
  set(found)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t ${targets})
    get_target_property(type ${t} TYPE)
    if(type STREQUAL "MODULE_LIBRARY")
      list(APPEND found ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub ${subdirs})
    ioloop__module_targets(sub_found ${sub})
    list(APPEND found ${sub_found})
  endforeach()
  set(${var} ${found} PARENT_SCOPE)
endfunction()

# The host, its backends and its bundled plugins.
install(TARGETS ioloop-host RUNTIME DESTINATION ${IOLOOP_INSTALL_BINDIR})
get_property(ioloop_backends GLOBAL PROPERTY IOLOOP_BACKENDS)
install(TARGETS ${ioloop_backends}
        LIBRARY DESTINATION ${IOLOOP_INSTALL_BACKENDDIR})
ioloop__module_targets(ioloop_plugins ${CMAKE_SOURCE_DIR}/plugins)
install(TARGETS ${ioloop_plugins}
        LIBRARY DESTINATION ${IOLOOP_INSTALL_PLUGINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/config/host.json
        DESTINATION ${IOLOOP_INSTALL_CONFDIR})

# The SDK headers, and libioloop_testing (api/ioloop/testing.h).
install(DIRECTORY ${CMAKE_SOURCE_DIR}/api/ioloop
        DESTINATION ${IOLOOP_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
install(TARGETS ioloop_testing LIBRARY DESTINATION ${IOLOOP_INSTALL_LIBDIR})

# A sanitized host refuses a plugin built without its sanitizers (the build
# signature, IOLOOP_BUILD_SIGNATURE in <ioloop/plugin.h>): the SDK hands the
# host's sanitizer flags on to every plugin built with it.
set(IOLOOP_SDK_SANITIZE "")
if(IOLOOP_SANITIZE)
  set(IOLOOP_SDK_SANITIZE "-fsanitize=address,undefined")
elseif(IOLOOP_TSAN)
  set(IOLOOP_SDK_SANITIZE "-fsanitize=thread")
endif()

# ioloop.pc names absolute paths, so it is written at install time, when
# the prefix (cmake --install --prefix) is known; DESTDIR is not part of
# the paths it names.
install(CODE "
  set(IOLOOP_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(IOLOOP_VERSION \"${PROJECT_VERSION}\")
  set(IOLOOP_SDK_SANITIZE \"${IOLOOP_SDK_SANITIZE}\")
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/ioloop.pc.in\"
                 \"${sdk_out}/ioloop.pc\" @ONLY)
  configure_file(\"${CMAKE_CURRENT_LIST_DIR}/ioloop-testing.pc.in\"
                 \"${sdk_out}/ioloop-testing.pc\" @ONLY)
")
install(FILES ${sdk_out}/ioloop.pc ${sdk_out}/ioloop-testing.pc
        DESTINATION ${IOLOOP_INSTALL_PKGCONFIGDIR})

# The CMake package: relocatable (paths relative to the config file).
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/ioloopConfig.cmake.in
  ${sdk_out}/ioloopConfig.cmake
  INSTALL_DESTINATION ${IOLOOP_INSTALL_CMAKEDIR}
  PATH_VARS IOLOOP_INSTALL_BINDIR IOLOOP_INSTALL_INCLUDEDIR
            IOLOOP_INSTALL_LIBDIR
            IOLOOP_INSTALL_BACKENDDIR IOLOOP_INSTALL_PLUGINDIR)
write_basic_package_version_file(
  ${sdk_out}/ioloopConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion)
install(FILES ${sdk_out}/ioloopConfig.cmake
              ${sdk_out}/ioloopConfigVersion.cmake
        DESTINATION ${IOLOOP_INSTALL_CMAKEDIR})
