#!/bin/bash
# bench/http/run.sh BUILD_DIR: hello through the host's HTTP layer (the
# manifest's "servers" routing "/" to hello_http.so), nginx and the
# tornado demo under wrk on 127.0.0.1, then 10,000 idle keep-alive
# connections to each. Prints two tables with ratios to nginx, then the
# issue's targets for the layer.
#
# The servers run on CPU 0 (taskset), wrk and the idle client on CPU 1.
# Server CPU per request is utime+stime of the server's processes, from
# /proc/PID/stat, over one wrk run, divided by the requests it completed.
#
# Knobs: BENCH_QUICK=1 (1 round of 2 s runs), BENCH_HTTP_ROUNDS,
# BENCH_HTTP_SECONDS, BENCH_HTTP_PORT (first of three ports, default
# 18081), BENCH_IDLE_CONNS (default 10000), BENCH_HTTP_BACKEND (epoll).
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK:-}" != 0 ]; then
    rounds=${BENCH_HTTP_ROUNDS:-1}
    seconds=${BENCH_HTTP_SECONDS:-2}
else
    rounds=${BENCH_HTTP_ROUNDS:-3}
    seconds=${BENCH_HTTP_SECONDS:-5}
fi
port0=${BENCH_HTTP_PORT:-18081}
idle=${BENCH_IDLE_CONNS:-10000}
backend=${BENCH_HTTP_BACKEND:-epoll}
python=/usr/bin/python3
tick=$(getconf CLK_TCK)
servers=(layer nginx tornado)
nservers=${#servers[@]}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ioloop-bench-http.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do
        kill "$p" 2>/dev/null || true
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n "$(ulimit -Hn)"

port_of() {
    case $1 in
    layer) echo "$port0" ;;
    nginx) echo $((port0 + 1)) ;;
    tornado) echo $((port0 + 2)) ;;
    esac
}


# start NAME: starts server NAME on CPU 0 in the background; sets $pid.
start() {
    port=$(port_of "$1")
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
        echo "http: port $port is already in use (set BENCH_HTTP_PORT)" >&2
        exit 1
    fi
    case $1 in
    layer)
        cat >"$tmp/layer.json" <<EOF
{
  "backend": "$backend",
  "backend_dir": "$build/backends",
  "plugin_dir": "$build/plugins",
  "log": { "level": "warn" },
  "servers": [
    { "name": "web", "listen": "127.0.0.1:$port",
      "max_connections": 20000,
      "routes": [ { "path": "/", "plugin": "hello" } ] }
  ],
  "plugins": [ { "name": "hello", "path": "hello_http.so" } ]
}
EOF
        taskset -c 0 "$build/ioloop-host" --config "$tmp/layer.json" \
            2>>"$tmp/layer.log" &
        ;;
    nginx)
        mkdir -p "$tmp/nginx"
        sed -e "s|@USER@|$(id -un)|" -e "s|@GROUP@|$(id -gn)|" \
            -e "s|@DIR@|$tmp/nginx|g" -e "s|@PORT@|$port|" \
            "$here/nginx.conf.in" >"$tmp/nginx/nginx.conf"
        taskset -c 0 nginx -p "$tmp/nginx/" -e "$tmp/nginx/error.log" \
            -c "$tmp/nginx/nginx.conf" 2>>"$tmp/nginx.log" &
        ;;
    tornado)
        taskset -c 0 "$python" "$here/tornado_hello.py" "$port" \
            2>>"$tmp/tornado.log" &
        ;;
    esac
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 50); do
        if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then
            return 0
        fi
        sleep 0.1
    done
    echo "http: $1 did not answer on port $port; its log:" >&2
    cat "$tmp/$1.log" >&2 || true
    exit 1
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# server_pid NAME: the pid of running server NAME (see the main loop).
declare -A server_pids
server_pid() {
    echo "${server_pids[$1]}"
}

# The server's processes, one a line: the pid and its children (nginx's
# worker).
tree() {
    echo "$1"
    pgrep -P "$1" || true
}

# utime+stime of the processes (arguments), in clock ticks.
ticks() {
    for p in "$@"; do
        sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null || true
    done | awk '{ t += $12 + $13 } END { print t + 0 }'
}

# wrk_run NAME CONNS SECONDS: one run; appends a result line to
# $tmp/results: name conns req/s cpu_us_per_req p50_us p99_us errors.
wrk_run() {
    port=$(port_of "$1")
    local procs
    mapfile -t procs < <(tree "$(server_pid "$1")")
    t0=$(ticks "${procs[@]}")
    timeout $(($3 + 30)) taskset -c 1 wrk -t1 -c"$2" -d"$3"s --latency \
        "http://127.0.0.1:$port/" >"$tmp/wrk.out"
    t1=$(ticks "${procs[@]}")
    awk -v name="$1" -v conns="$2" -v dt=$((t1 - t0)) -v tick="$tick" '
        function us(v) {
            if (v ~ /us$/) return v + 0;
            if (v ~ /ms$/) return v * 1000;
            if (v ~ /s$/) return v * 1000000;
            return v;
        }
        / 50%/ { p50 = us($2) }
        / 99%/ { p99 = us($2) }
        /requests in/ { req = $1 }
        /Requests\/sec/ { rps = $2 }
        /Socket errors|Non-2xx/ { err = err $0 ";" }
        END {
            if (req == 0) {
                print "http: no requests completed" > "/dev/stderr";
                exit 1;
            }
            printf "%s %s %.0f %.2f %.0f %.0f %s\n", name, conns, rps,
                   dt * 1e6 / tick / req, p50, p99, err == "" ? "-" : "yes"
        }' "$tmp/wrk.out" >>"$tmp/results"
}

printf 'http: wrk -t1, %s s per run, %s round(s), servers rotated each ' \
    "$seconds" "$rounds"
printf 'run; servers on CPU 0, wrk on CPU 1\n'
printf '  layer: ioloop-host "servers" -> hello_http.so on %s.so; ' \
    "$backend"
printf 'nginx %s (1 worker); ' "$(nginx -v 2>&1 | sed 's|.*/||')"
printf 'tornado %s on %s\n' \
    "$("$python" -c 'import tornado; print(tornado.version)')" \
    "$("$python" -V 2>&1)"
printf '  medians over rounds [min-max]; CPU = server utime+stime from '
printf '/proc/PID/stat / requests\n'
printf '  load average before: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

for s in "${servers[@]}"; do
    start "$s"
    server_pids[$s]=$pid
done
for s in "${servers[@]}"; do
    wrk_run "$s" 50 1 # warm-up, not reported
done
: >"$tmp/results"
i=0
for _ in $(seq "$rounds"); do
    for c in 50 500; do
        for k in $(seq 0 $((nservers - 1))); do
            wrk_run "${servers[(k + i) % nservers]}" "$c" "$seconds"
        done
        i=$((i + 1))
    done
done
for p in $pids; do
    stop "$p"
done
pids=""

awk -v servers="${servers[*]}" -v out="$tmp/ratios" '
    function median(key,    n, i, j, t, v) {
        n = split(vals[key], v, " ");
        for (i = 2; i <= n; i++) {
            t = v[i] + 0;
            for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j];
            v[j + 1] = t;
        }
        lo[key] = v[1]; hi[key] = v[n];
        return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2;
    }
    {
        k = $1 SUBSEP $2;
        vals[k SUBSEP "rps"] = vals[k SUBSEP "rps"] " " $3;
        vals[k SUBSEP "cpu"] = vals[k SUBSEP "cpu"] " " $4;
        vals[k SUBSEP "p50"] = vals[k SUBSEP "p50"] " " $5;
        vals[k SUBSEP "p99"] = vals[k SUBSEP "p99"] " " $6;
        if ($7 != "-") errs[k] = "yes";
    }
    END {
        printf "  %-12s %5s %9s %-22s %7s %8s %8s %7s %6s\n", "server",
               "conns", "req/s", "us CPU/req", "x nginx", "p50 us",
               "p99 us", "x nginx", "errors";
        ns = split(servers, sv, " ");
        for (c = 50; c <= 500; c += 450) {
            rcpu = median("nginx" SUBSEP c SUBSEP "cpu");
            rp99 = median("nginx" SUBSEP c SUBSEP "p99");
            for (i = 1; i <= ns; i++) {
                k = sv[i] SUBSEP c;
                cpu = median(k SUBSEP "cpu");
                p99 = median(k SUBSEP "p99");
                printf "  %-12s %5d %9.0f %6.2f %-15s %6.2fx %8.0f %8.0f " \
                       "%6.2fx %6s\n", sv[i], c, median(k SUBSEP "rps"), cpu,
                       sprintf("[%.2f-%.2f]", lo[k SUBSEP "cpu"],
                               hi[k SUBSEP "cpu"]),
                       cpu / rcpu, median(k SUBSEP "p50"), p99, p99 / rp99,
                       (k in errs) ? "yes" : "-";
                if (sv[i] == "layer") {
                    printf "cpu %d %.2f\np99 %d %.2f\n", c, cpu / rcpu, c,
                           p99 / rp99 > out;
                }
            }
        }
    }' "$tmp/results"

printf '\nidle keep-alive connections: %s, each served one GET / and then ' \
    "$idle"
printf 'held; RSS = VmRSS of the server processes\n'
printf '  %-12s %6s %14s %14s %8s %7s\n' server conns "RSS before KB" \
    "RSS after KB" "B/conn" "x nginx"
: >"$tmp/idle"
for s in "${servers[@]}"; do
    start "$s"
    sleep 0.2
    mapfile -t procs < <(tree "$pid")
    timeout 180 taskset -c 1 "$build/bench/idle_conns" "$(port_of "$s")" \
        "$idle" "${procs[@]}" >"$tmp/idle.out" || true
    stop "$pid"
    pids=""
    sed -e 's/[a-z_]*=//g' -e "s/^/$s /" "$tmp/idle.out" >>"$tmp/idle"
done
awk '
    { name[NR] = $1; n[NR] = $2; before[NR] = $3; after[NR] = $4;
      per[NR] = $2 > 0 ? ($4 - $3) * 1024 / $2 : 0;
      if ($1 == "nginx") ref = per[NR] }
    END {
        for (i = 1; i <= NR; i++) {
            printf "  %-12s %6d %14d %14d %8.0f %6.2fx\n", name[i], n[i],
                   before[i], after[i], per[i], (ref > 0 ? per[i] / ref : 0);
            if (name[i] == "layer") {
                printf "idle %d %.0f\n", n[i], per[i] >> ratios;
            }
        }
    }' ratios="$tmp/ratios" "$tmp/idle"

# The targets of issue 11 for hello through the layer.
printf '\ntargets (layer; issue 11), load average after: %s\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v want="$idle" '
    function verdict(ok) { return ok ? "met" : "MISSED" }
    $1 == "cpu" {
        printf "  CPU/request at c%-3d <= 0.90x nginx: %5.2fx  %s\n", $2, $3,
               verdict($3 <= 0.90)
    }
    $1 == "p99" {
        printf "  p99 at c%-3d         <= 1.00x nginx: %5.2fx  %s\n", $2, $3,
               verdict($3 <= 1.00)
    }
    $1 == "idle" {
        printf "  idle keep-alive connection <= 256 B: %5d B  %s%s\n", $3,
               verdict($3 <= 256 && $2 == want),
               $2 == want ? "" : sprintf(" (only %d connections)", $2)
    }' "$tmp/ratios"
