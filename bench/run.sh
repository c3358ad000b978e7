#!/bin/sh
# bench/run.sh BUILD_DIR: runs the five benchmarks against the build in
# BUILD_DIR (configured with -DIOLOOP_BENCH=ON; `make bench` does it all)
# and prints their tables. See docs/performance.md.
#
# Knobs: BENCH_QUICK=1 (a fast pass: fewer rounds and shorter runs);
# BENCH_ONLY="pipechain timers callbacks http tls ircount" (a subset);
# and those of http/run.sh and tls/run.sh. The in-process benchmarks run on CPU 1. Last,
# ircount (bench/ircount.sh): instruction counts under callgrind against
# bench/ircount.baseline; run.sh then exits 1 when one regressed by more
# than 3 %. BENCH_IRCOUNT=0 skips it.
set -eu

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
only=${BENCH_ONLY:-pipechain timers callbacks http tls ircount}
if [ "${BENCH_IRCOUNT:-1}" = 0 ]; then
    only=$(echo "$only" | sed 's/ircount//')
fi
status=0

echo "ioloop-host benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "  $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs;" \
    "Linux $(uname -r)"
echo "  build: $build; BENCH_QUICK=${BENCH_QUICK:-0}"
for b in $only; do
    echo
    case $b in
    pipechain | timers | callbacks)
        taskset -c 1 "$build/bench/$b" "$build/backends"
        ;;
    http)
        "$here/http/run.sh" "$build"
        ;;
    tls)
        "$here/tls/run.sh" "$build"
        ;;
    ircount)
        "$here/ircount.sh" "$build" || status=1
        ;;
    *)
        echo "bench: unknown benchmark $b" >&2
        exit 2
        ;;
    esac
done
exit $status
