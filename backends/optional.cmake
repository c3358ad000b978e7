# Backends that need a probe or a library, included by
# backends/CMakeLists.txt. Each one is skipped quietly when its probe fails,
# so a plain Linux box builds neither kqueue nor io_uring and still passes.
#
#   kqueue    native on FreeBSD, NetBSD, OpenBSD and macOS (<sys/event.h>);
#             on Linux through libkqueue (verified with 2.7.0, built by
#             hand: docs/backends.md), when pkg-config finds it. Linux CI
#             also builds it against tests/fakes/kqueue_emul.c, which
#             declares only what libkqueue does, see
#             tests/backends/kqueue_emul.cmake.
#   io_uring  Linux, through liburing (Debian: liburing-dev), when
#             pkg-config finds it. The kernel may still refuse io_uring at
#             run time; create() then says why.

include(CheckSymbolExists)

check_symbol_exists(kqueue "sys/types.h;sys/event.h" IOLOOP_HAVE_KQUEUE)
if(IOLOOP_HAVE_KQUEUE)
  ioloop_backend(kqueue kqueue.c)
  # NetBSD, FreeBSD >= 14: a close-on-exec kqueue in one call.
  check_symbol_exists(kqueue1 "sys/types.h;sys/event.h;fcntl.h"
                      IOLOOP_HAVE_KQUEUE1)
  if(IOLOOP_HAVE_KQUEUE1)
    target_compile_definitions(kqueue PRIVATE IOLOOP_HAVE_KQUEUE1)
  endif()
else()
  pkg_check_modules(LIBKQUEUE QUIET IMPORTED_TARGET libkqueue)
  if(LIBKQUEUE_FOUND)
    ioloop_backend(kqueue kqueue.c LIBS PkgConfig::LIBKQUEUE)
  endif()
endif()

pkg_check_modules(LIBURING QUIET IMPORTED_TARGET liburing)
if(LIBURING_FOUND)
  ioloop_backend(io_uring io_uring.c LIBS PkgConfig::LIBURING)
endif()
