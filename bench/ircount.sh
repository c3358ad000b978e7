#!/bin/sh
# bench/ircount.sh BUILD_DIR [--update]: instructions per operation, for
# ioloop-host and libev, libevent and libuv in the same run, counted by
# valgrind --tool=callgrind (user space only, exact, immune to the noise
# of a shared machine). Runs the pipechain, timers and callbacks drivers
# with BENCH_IRCOUNT=1: one short plan each (pipechain N=1000 A=1, 1001
# events; 10^4 timers; 10^4 callbacks), whose timed phases they mark with
# callgrind client requests (bench_ir_begin/bench_ir_end, after two
# warm-up iterations). Prints a table, then ioloop's counts against
# bench/ircount.baseline: a count more than 3 % above its baseline is
# flagged and the script exits 1. --update rewrites the baseline from
# this run instead. See docs/performance.md.
set -eu

build=$(cd "${1:?usage: ircount.sh BUILD_DIR [--update]}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
baseline=$here/ircount.baseline
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM

for b in pipechain timers callbacks; do
    if ! BENCH_IRCOUNT=1 valgrind --tool=callgrind \
        --callgrind-out-file="$out/$b" "$build/bench/$b" \
        "$build/backends" >"$out/$b.log" 2>&1; then
        echo "ircount: $b failed under callgrind:" >&2
        tail -n 20 "$out/$b.log" >&2
        exit 1
    fi
done

# One row per marked phase: op;contender;instructions per op. Each dump
# callgrind made on a client request is one file, $b.1, $b.2, ...
for f in "$out"/*.[0-9]*; do
    awk '/^desc: Trigger: Client Request: IR;/ {
             sub(/^desc: Trigger: Client Request: IR;/, ""); label = $0 }
         /^summary:/ { ir = $2 }
         END {
             if (label == "") { exit }
             n = split(label, f, ";")
             printf "%s;%s;%.1f\n", f[2], f[3], ir / f[n]
         }' "$f"
done | sed 's#;ioloop/epoll;#;ioloop;#' | sort >"$out/rows"

if [ "${2:-}" = "--update" ]; then
    {
        echo "# bench/ircount.baseline: instructions per operation"
        echo "# (op;contender;count), written by bench/ircount.sh --update"
        cat "$out/rows"
    } >"$baseline"
    echo "ircount: baseline written to $baseline"
fi

awk -F';' -v baseline="$baseline" '
    BEGIN {
        while ((getline line < baseline) > 0) {
            if (line ~ /^#/) { continue }
            split(line, b, ";")
            base[b[1] ";" b[2]] = b[3]
        }
        nops = split("event (N=1000 A=1);timer add;timer cancel;" \
                     "timer fire;callback (post+dispatch)", ops, ";")
        ncols = split("ioloop;libev;libevent;libuv;raw epoll", cols, ";")
    }
    { v[$1 ";" $2] = $3 }
    END {
        print "instruction counts: callgrind, user space; instructions " \
              "per operation (x libev = ioloop / libev)"
        print "  pipechain event: N=1000 A=1, 1001 events; timers: " \
              "T=10^4; callbacks: 10^4; after 2 warm-up iterations"
        printf "\n  %-26s", "operation"
        for (c = 1; c <= ncols; c++) { printf " %9s", cols[c] }
        printf " %8s %10s %10s\n", "x libev", "baseline", "x baseline"
        bad = 0
        for (o = 1; o <= nops; o++) {
            printf "  %-26s", ops[o]
            for (c = 1; c <= ncols; c++) {
                k = ops[o] ";" cols[c]
                printf " %9s", (k in v) ? v[k] : "-"
            }
            me = v[ops[o] ";ioloop"]
            ev = v[ops[o] ";libev"]
            printf " %7.2fx", (ev > 0) ? me / ev : 0
            k = ops[o] ";ioloop"
            if (k in base && base[k] > 0) {
                r = me / base[k]
                flag = r > 1.03 ? "  REGRESSION (> 3 %)" : ""
                if (r > 1.03) { bad = 1 }
                printf " %10s %9.3fx%s\n", base[k], r, flag
            } else {
                printf " %10s %10s\n", "-", "-"
            }
        }
        exit bad
    }' "$out/rows"
