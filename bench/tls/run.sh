#!/bin/bash
# bench/tls/run.sh BUILD_DIR: hello over HTTPS through the host's HTTP
# layer (a TLS server of the manifest routing "/" to hello_http.so)
# beside nginx with ssl, on the same throwaway certificate (RSA 2048, made
# here with openssl, deleted at exit), TLS 1.3 only, one cipher suite.
# Prints three tables with ratios to nginx, then the issue's targets:
#   keep-alive: wrk -t1 -c50 over https; server CPU per request;
#   handshakes: BENCH_TLS_CLIENTS parallel `openssl s_time -new -www /`
#     (a new connection per request, full handshake: -new never offers a
#     session to resume), connections per second of wall time and server
#     CPU per handshake;
#   idle: BENCH_TLS_IDLE_CONNS keep-alive TLS connections (idle_conns
#     --tls), server RSS per connection (reported only).
#
# The servers run on CPU 0 (taskset), the clients on CPU 1, side by side,
# taking turns (order rotated each round). Server CPU is utime+stime of
# the server's processes from /proc/PID/stat.
#
# Knobs: BENCH_QUICK=1 (1 round of 2 s runs), BENCH_TLS_ROUNDS (3),
# BENCH_TLS_SECONDS (5), BENCH_TLS_PORT (first of two ports, default
# 18181), BENCH_TLS_CLIENTS (4), BENCH_TLS_IDLE_CONNS (2000),
# BENCH_HTTP_BACKEND (epoll).
set -euo pipefail

build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${BENCH_QUICK:-}" ] && [ "${BENCH_QUICK:-}" != 0 ]; then
    rounds=${BENCH_TLS_ROUNDS:-1}
    seconds=${BENCH_TLS_SECONDS:-2}
else
    rounds=${BENCH_TLS_ROUNDS:-3}
    seconds=${BENCH_TLS_SECONDS:-5}
fi
port0=${BENCH_TLS_PORT:-18181}
clients=${BENCH_TLS_CLIENTS:-4}
idle=${BENCH_TLS_IDLE_CONNS:-2000}
backend=${BENCH_HTTP_BACKEND:-epoll}
# The suite the layer prefers among those a default client offers (the
# host sets SSL_OP_CIPHER_SERVER_PREFERENCE on OpenSSL's default list);
# nginx is pinned to it and the check below makes sure both agree.
cipher=TLS_AES_256_GCM_SHA384
tick=$(getconf CLK_TCK)
servers=(layer nginx)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ioloop-bench-tls.XXXXXX")
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
    esac
}

# The throwaway certificate both servers use, for 127.0.0.1.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" \
    -out "$tmp/cert.pem" 2>/dev/null

# start NAME: starts server NAME on CPU 0 in the background; sets $pid.
start() {
    local port
    port=$(port_of "$1")
    if curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$port/"; then
        echo "tls: port $port is already in use (set BENCH_TLS_PORT)" >&2
        exit 1
    fi
    case $1 in
    layer)
        cat >"$tmp/layer.json" <<JSON
{
  "backend": "$backend",
  "backend_dir": "$build/backends",
  "plugin_dir": "$build/plugins",
  "log": { "level": "warn" },
  "plugins": [ { "name": "hello", "path": "hello_http.so" } ],
  "servers": [
    { "name": "bench", "listen": "127.0.0.1:$port",
      "max_connections": 20000,
      "tls": { "cert": "$tmp/cert.pem", "key": "$tmp/key.pem",
               "min_version": "1.3" },
      "routes": [ { "path": "/", "plugin": "hello" } ] }
  ]
}
JSON
        taskset -c 0 "$build/ioloop-host" --config "$tmp/layer.json" \
            2>>"$tmp/layer.log" &
        ;;
    nginx)
        sed -e "s|@USER@|$(id -un)|" -e "s|@GROUP@|$(id -gn)|" \
            -e "s|@DIR@|$tmp|g" -e "s|@PORT@|$port|" \
            -e "s|@CIPHER@|$cipher|" "$here/nginx.conf.in" \
            >"$tmp/nginx.conf"
        taskset -c 0 nginx -p "$tmp/" -e "$tmp/error.log" \
            -c "$tmp/nginx.conf" 2>>"$tmp/nginx.log" &
        ;;
    esac
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 50); do
        if curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$port/"; then
            return 0
        fi
        sleep 0.1
    done
    echo "tls: $1 did not answer on port $port; its log:" >&2
    cat "$tmp/$1.log" >&2 || true
    exit 1
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

declare -A server_pids

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

# negotiated NAME: "protocol cipher group" of a default client's session
# with server NAME (what wrk gets).
negotiated() {
    openssl s_client -connect "127.0.0.1:$(port_of "$1")" </dev/null \
        2>/dev/null | awk '
        /^New, / { proto = $2; sub(/,$/, "", proto); cipher = $NF }
        /^Server Temp Key:/ { group = $4; sub(/,$/, "", group) }
        END { print proto, cipher, group }'
}

# wrk_run NAME SECONDS: one keep-alive run at c50; appends "name req/s
# cpu_us_per_req p50_us p99_us errors" to $tmp/keepalive.
wrk_run() {
    local procs t0 t1
    mapfile -t procs < <(tree "${server_pids[$1]}")
    t0=$(ticks "${procs[@]}")
    timeout $(($2 + 30)) taskset -c 1 wrk -t1 -c50 -d"$2"s --latency \
        "https://127.0.0.1:$(port_of "$1")/" >"$tmp/wrk.out"
    t1=$(ticks "${procs[@]}")
    awk -v name="$1" -v dt=$((t1 - t0)) -v tick="$tick" '
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
        /Socket errors|Non-2xx/ { err = "yes" }
        END {
            if (req == 0) {
                print "tls: no requests completed" > "/dev/stderr";
                exit 1;
            }
            printf "%s %.0f %.2f %.0f %.0f %s\n", name, rps,
                   dt * 1e6 / tick / req, p50, p99, err == "" ? "-" : err
        }' "$tmp/wrk.out" >>"$tmp/keepalive"
}

# handshake_run NAME SECONDS: $clients parallel s_time -new on CPU 1;
# appends "name conns_per_s cpu_us_per_handshake" to $tmp/handshakes.
handshake_run() {
    local procs t0 t1 w0 w1 k clients_pids=()
    mapfile -t procs < <(tree "${server_pids[$1]}")
    t0=$(ticks "${procs[@]}")
    w0=$(date +%s%N)
    for k in $(seq "$clients"); do
        timeout $(($2 + 30)) taskset -c 1 openssl s_time -new -www / \
            -connect "127.0.0.1:$(port_of "$1")" -ciphersuites "$cipher" \
            -time "$2" >"$tmp/s_time.$k" 2>&1 &
        clients_pids+=($!)
    done
    for k in "${clients_pids[@]}"; do
        wait "$k" || true
    done
    w1=$(date +%s%N)
    t1=$(ticks "${procs[@]}")
    cat "$tmp"/s_time.* | awk -v name="$1" -v dt=$((t1 - t0)) \
        -v tick="$tick" -v wall=$((w1 - w0)) '
        / connections in / { n += $1 }
        /ERROR|error/ { err = 1 }
        END {
            if (n == 0 || err) {
                print "tls: s_time failed against " name > "/dev/stderr";
                exit 1;
            }
            printf "%s %.0f %.0f\n", name, n * 1e9 / wall,
                   dt * 1e6 / tick / n
        }' >>"$tmp/handshakes"
    rm -f "$tmp"/s_time.*
}

printf 'tls: hello over HTTPS, layer (ioloop-host "servers" with tls -> '
printf 'hello_http.so on %s.so) vs nginx %s (1 worker, ssl)\n' \
    "$backend" "$(nginx -v 2>&1 | sed 's|.*/||')"
printf '  same throwaway RSA-2048 certificate; TLS 1.3 only; servers on CPU '
printf '0, clients on CPU 1; %s s per run, %s round(s), order rotated\n' \
    "$seconds" "$rounds"
printf '  %s; load average before: %s\n' "$(openssl version)" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"

for s in "${servers[@]}"; do
    start "$s"
    server_pids[$s]=$pid
done
for s in "${servers[@]}"; do
    printf '  %-6s negotiates (default client, as wrk): %s\n' "$s" \
        "$(negotiated "$s")"
done
if [ "$(negotiated layer)" != "$(negotiated nginx)" ]; then
    echo "tls: the servers negotiate different parameters" >&2
    exit 1
fi
for s in "${servers[@]}"; do
    wrk_run "$s" 1 # warm-up, not reported
done
: >"$tmp/keepalive"
: >"$tmp/handshakes"
for r in $(seq 0 $((rounds - 1))); do
    for k in 0 1; do
        wrk_run "${servers[(k + r) % 2]}" "$seconds"
    done
    for k in 0 1; do
        handshake_run "${servers[(k + r) % 2]}" "$seconds"
    done
done

# median FILE NAME COLUMN: the median of COLUMN over NAME's lines, with
# [min-max].
median() {
    awk -v name="$2" -v col="$3" '$1 == name { v[++n] = $col + 0 }
        END {
            for (i = 2; i <= n; i++) {
                t = v[i];
                for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j];
                v[j + 1] = t;
            }
            m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2;
            printf "%s %s %s\n", m, v[1], v[n];
        }' "$1"
}

printf '\nkeep-alive: wrk -t1 -c50 --latency https://; medians [min-max]\n'
printf '  %-8s %8s %-22s %7s %8s %8s %6s\n' server req/s "us CPU/req" \
    "x nginx" "p50 us" "p99 us" errors
read -r ref_cpu _ < <(median "$tmp/keepalive" nginx 3)
for s in "${servers[@]}"; do
    read -r rps _ < <(median "$tmp/keepalive" "$s" 2)
    read -r cpu lo hi < <(median "$tmp/keepalive" "$s" 3)
    read -r p50 _ < <(median "$tmp/keepalive" "$s" 4)
    read -r p99 _ < <(median "$tmp/keepalive" "$s" 5)
    err=$(awk -v n="$s" '$1 == n && $6 != "-" { e = "yes" }
        END { print e == "" ? "-" : e }' "$tmp/keepalive")
    ratio=$(awk -v a="$cpu" -v b="$ref_cpu" 'BEGIN { printf "%.2f", a / b }')
    printf '  %-8s %8.0f %6.2f %-15s %6.2fx %8.0f %8.0f %6s\n' "$s" "$rps" \
        "$cpu" "[$(printf '%.2f-%.2f' "$lo" "$hi")]" "$ratio" "$p50" "$p99" \
        "$err"
    if [ "$s" = layer ]; then
        ka_ratio=$ratio
    fi
done

printf '\nfull handshakes: %s x openssl s_time -new -www / -ciphersuites %s' \
    "$clients" "$cipher"
printf ' (no resumption); medians [min-max];\n  capacity = 1e6 / CPU per '
printf 'handshake: what the server CPU could do (the clients share CPU 1)\n'
printf '  %-8s %-24s %7s %-18s %7s %9s\n' server "handshakes/s" "x nginx" \
    "us CPU/handshake" "x nginx" capacity
read -r ref_hs _ < <(median "$tmp/handshakes" nginx 2)
read -r ref_hcpu _ < <(median "$tmp/handshakes" nginx 3)
for s in "${servers[@]}"; do
    read -r hs lo hi < <(median "$tmp/handshakes" "$s" 2)
    read -r hcpu clo chi < <(median "$tmp/handshakes" "$s" 3)
    ratio=$(awk -v a="$hs" -v b="$ref_hs" 'BEGIN { printf "%.2f", a / b }')
    cratio=$(awk -v a="$hcpu" -v b="$ref_hcpu" \
        'BEGIN { printf "%.2f", a / b }')
    printf '  %-8s %6.0f %-17s %6.2fx %5.0f %-12s %6.2fx %9.0f\n' "$s" \
        "$hs" "[$lo-$hi]" "$ratio" "$hcpu" "[$clo-$chi]" "$cratio" \
        "$(awk -v c="$hcpu" 'BEGIN { print 1e6 / c }')"
    if [ "$s" = layer ]; then
        hs_ratio=$ratio
        cap_ratio=$(awk -v a="$ref_hcpu" -v b="$hcpu" \
            'BEGIN { printf "%.2f", a / b }')
    fi
done

for p in $pids; do
    stop "$p"
done
pids=""

printf '\nidle TLS keep-alive connections: %s, each did a handshake and one ' \
    "$idle"
printf 'GET / and is held; RSS = VmRSS of the server processes\n'
printf '  %-8s %6s %14s %14s %8s %7s\n' server conns "RSS before KB" \
    "RSS after KB" "B/conn" "x nginx"
: >"$tmp/idle"
for s in "${servers[@]}"; do
    start "$s"
    sleep 0.2
    mapfile -t procs < <(tree "$pid")
    timeout 180 taskset -c 1 "$build/bench/idle_conns" --tls \
        "$(port_of "$s")" "$idle" "${procs[@]}" >"$tmp/idle.out" || true
    stop "$pid"
    pids=""
    sed -e 's/[a-z_]*=//g' -e "s/^/$s /" "$tmp/idle.out" >>"$tmp/idle"
done
awk '
    { name[NR] = $1; n[NR] = $2; before[NR] = $3; after[NR] = $4;
      per[NR] = $2 > 0 ? ($4 - $3) * 1024 / $2 : 0;
      if ($1 == "nginx") ref = per[NR] }
    END {
        for (i = 1; i <= NR; i++)
            printf "  %-8s %6d %14d %14d %8.0f %6.2fx\n", name[i], n[i],
                   before[i], after[i], per[i], (ref > 0 ? per[i] / ref : 0);
    }' "$tmp/idle"

printf '\ntargets (layer over TLS; issue 11), load average after: %s\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
awk -v ka="$ka_ratio" -v hs="$hs_ratio" -v cap="$cap_ratio" 'BEGIN {
    printf "  keep-alive CPU/request <= 1.00x nginx: %5.2fx  %s\n", ka,
           (ka <= 1.00) ? "met" : "MISSED";
    printf "  full handshakes/s      >= 1.00x nginx: %5.2fx  %s\n", hs,
           (hs >= 1.00) ? "met" : "MISSED";
    printf "    (capacity, 1e6 / CPU per handshake: %5.2fx  %s)\n", cap,
           (cap >= 1.00) ? "met" : "MISSED";
}'
