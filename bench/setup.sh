#!/bin/sh
# bench/setup.sh: installs the Debian packages only the benchmarks need
# (the peers measured beside ioloop-host, and wrk) when run as root;
# otherwise prints the apt-get line to run and fails. Like `make setup`.
set -eu

packages="libev-dev libevent-dev libuv1-dev wrk nginx-light python3-tornado
          procps util-linux valgrind openssl"
missing=""
for p in $packages; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
        grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "bench setup: installing$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
else
    echo "bench setup: missing Debian packages; run:"
    echo "  sudo apt-get install -y$missing"
    exit 1
fi
