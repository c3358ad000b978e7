#!/bin/sh
# tests/package/test_package.sh DEBDIR: uses the packages of `make deb` the
# way a user would, without installing them on this machine. Run by
# `IOLOOP_TEST_DEB=1 make test`.
#
#   1. dpkg -x ioloop-host and libioloop-dev into a temporary root;
#   2. build the packaged plugin template against the extracted -dev files
#      with its Makefile + pkg-config (pkg-config --define-prefix relocates
#      the .pc files to the root) and run its unit test on libioloop_testing;
#   3. the same with CMake (find_package(ioloop) is relocatable:
#      CMAKE_PREFIX_PATH=<root>/usr), and its ctest, whose end-to-end test
#      loads the plugin into the extracted host;
#   4. run the extracted host with the packaged /etc/ioloop-host/host.json
#      (listen ports changed to 0, nothing else), GET / must say "hello",
#      then SIGTERM must stop it, exit status 0, within the manifest's
#      shutdown_timeout (10 s by default) + 2 s.
set -eu

debdir=${1:?usage: tests/package/test_package.sh DEBDIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ioloop-package.XXXXXX")
host_pid=
cleanup() {
    if [ -n "$host_pid" ]; then
        kill -KILL "$host_pid" 2>/dev/null || true
        wait "$host_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fail() {
    echo "test_package: FAIL: $*" >&2
    exit 1
}
step() {
    echo "test_package: $*"
}

# The one package of each name in DEBDIR (make deb empties it first).
deb() {
    name=$1
    set -- "$debdir"/"$name"_*_*.deb
    [ $# -eq 1 ] && [ -f "$1" ] || fail "$debdir: want exactly one $name .deb"
    echo "$1"
}

root=$tmp/root
step "dpkg -x into $root"
host_deb=$(deb ioloop-host)
dev_deb=$(deb libioloop-dev)
dpkg -x "$host_deb" "$root"
dpkg -x "$dev_deb" "$root"

usr=$root/usr
host=$usr/bin/ioloop-host
conf=$root/etc/ioloop-host/host.json
template=$usr/share/doc/libioloop-dev/examples/plugin-template
unit=$root/lib/systemd/system/ioloop-host.service
for f in "$host" "$conf" "$template/CMakeLists.txt" "$unit" \
         "$root/lib/systemd/system/ioloop-host.socket" \
         "$usr/lib/ioloop/plugins/hello_http.so" \
         "$usr/lib/ioloop/backends/epoll.so" \
         "$usr/include/ioloop/plugin.h" "$usr/lib/pkgconfig/ioloop.pc" \
         "$usr/lib/cmake/ioloop/ioloopConfig.cmake"; do
    [ -e "$f" ] || fail "${f#"$root"} is not in the packages"
done
# The unit runs what the package installs, as the package's user.
grep -qx 'ExecStart=/usr/bin/ioloop-host --config /etc/ioloop-host/host.json' \
    "$unit" || fail "${unit#"$root"}: ExecStart is not the packaged host"
grep -qx 'User=ioloop-host' "$unit" || fail "${unit#"$root"}: no User="

step "plugin template with make + pkg-config"
pc="pkg-config --define-prefix"
export PKG_CONFIG_PATH="$usr/lib/pkgconfig"
cflags=$(echo $($pc --cflags ioloop)) # without the trailing blank
[ "$cflags" = "-I$usr/include" ] ||
    fail "pkg-config --define-prefix --cflags ioloop: '$cflags'"
mkdir "$tmp/make"
make -s -C "$tmp/make" -f "$template/Makefile" PKG_CONFIG="$pc" kv.so check
[ -f "$tmp/make/kv.so" ] || fail "make built no kv.so"

step "plugin template with CMake"
unset PKG_CONFIG_PATH
cmake -S "$template" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$usr" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 ||
    { cat "$tmp/cmake.log"; fail "cmake configure"; }
grep -qx "ioloop_DIR:PATH=$usr/lib/cmake/ioloop" "$tmp/cmake/CMakeCache.txt" ||
    fail "find_package(ioloop) did not take the extracted SDK"
cmake --build "$tmp/cmake" -j 2 >"$tmp/build.log" 2>&1 ||
    { cat "$tmp/build.log"; fail "cmake --build"; }
ctest --test-dir "$tmp/cmake" --output-on-failure ||
    fail "the template's tests against the extracted SDK and host"

step "extracted host with the packaged manifest"
"$host" --check --config "$conf" >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log"; fail "ioloop-host --check ${conf#"$root"}"; }
# Port 0 everywhere (other tests run at the same time); nothing else moves.
sed 's/"\(127\.0\.0\.1\|0\.0\.0\.0\|\[::1\]\|\[::\]\):[0-9]*"/"\1:0"/' \
    "$conf" >"$tmp/host.json"
! grep -q ':[1-9][0-9]*"' "$tmp/host.json" ||
    fail "a listener of ${conf#"$root"} kept a fixed port"
"$host" --config "$tmp/host.json" >"$tmp/host.log" 2>&1 &
host_pid=$!
port=
tries=0
while [ -z "$port" ]; do
    # the server "web" that routes / to hello
    port=$(sed -n 's/.* \[host\] listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
        "$tmp/host.log" | head -n 1)
    kill -0 "$host_pid" 2>/dev/null ||
        { cat "$tmp/host.log"; fail "the host exited at start"; }
    tries=$((tries + 1))
    [ "$tries" -le 300 ] ||
        { cat "$tmp/host.log"; fail "no \"[host] listening on\" in 30 s"; }
    [ -n "$port" ] || sleep 0.1
done
body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/") ||
    { cat "$tmp/host.log"; fail "curl http://127.0.0.1:$port/"; }
[ "$body" = hello ] || fail "GET / answered '$body', not 'hello'"
step "GET http://127.0.0.1:$port/ -> $body"

start=$(date +%s%N)
kill -TERM "$host_pid"
tries=0
# Until it is gone or a zombie (exited, not yet reaped by wait).
while ps -o stat= -p "$host_pid" | grep -q '^[^Z]'; do
    tries=$((tries + 1))
    [ "$tries" -le 120 ] ||
        { cat "$tmp/host.log"; fail "SIGTERM: still running after 12 s"; }
    sleep 0.1
done
ms=$((($(date +%s%N) - start) / 1000000))
status=0
wait "$host_pid" || status=$?
host_pid=
[ "$status" -eq 0 ] ||
    { cat "$tmp/host.log"; fail "SIGTERM: exit status $status"; }
step "SIGTERM: exit 0 after $ms ms"
step "PASS"
