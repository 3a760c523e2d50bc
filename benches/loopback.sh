#!/usr/bin/env bash
# Requests per second over loopback, with and without the stats layer, measured with wrk.
#
#   benches/loopback.sh [ROUNDS] [SECONDS]       (default 3 rounds of 3 s: about 2 minutes)
#
# Builds benches/server.rs in release (through benches/executable.sh) and starts it four
# times on 127.0.0.1: bare, with tower-http's in-flight request counter (the floor of any
# `Router::layer`), with a minimal per-route latency layer (tests/common/minimal.rs:
# counters, one histogram, two clock reads) and with the stats layer, all pinned to CPU 0;
# wrk runs pinned to CPU 1 with 64 connections. Each round runs every workload against each
# server in turn (the order reverses between rounds):
#   - hello:     GET /hello
#   - mix:       GET /hello, GET /users/{id}, 1 KiB POST /echo, one request at a time
#   - pipelined: the same mix, 16 requests pipelined per write (the server is the bottleneck)
# Prints req/s of every run, the medians and the ratios to bare (of the medians, and the
# median of each round's paired ratio with its range), then stops the servers.
# Needs wrk (apt-get install wrk) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
seconds=${2:-3}
connections=64
bare_port=${BARE_PORT:-3801}
layered_port=${LAYERED_PORT:-3802}
in_flight_port=${IN_FLIGHT_PORT:-3803}
minimal_port=${MINIMAL_PORT:-3804}
for tool in wrk taskset curl; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (server on 0, wrk on 1)" >&2; exit 1; }

bin=$(benches/executable.sh server)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

start_server() { # port [--bare | --in-flight | --minimal]
    taskset -c 0 "$bin" --port "$@" >"$work/server.$1.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 100); do
        curl -fs -o /dev/null "http://127.0.0.1:$1/hello" && return 0
        sleep 0.05
    done
    echo "the server on port $1 did not start:" >&2
    cat "$work/server.$1.log" >&2
    exit 1
}
start_server "$bare_port" --bare
start_server "$in_flight_port" --in-flight
start_server "$minimal_port" --minimal
start_server "$layered_port"

# wrk scripts: the mix one request at a time, and pipelined 16 deep; both start with the mix.
cat >"$work/requests.lua" <<'LUA'
local body = string.rep("x", 1024)
local mix = {
    wrk.format("GET", "/hello"),
    wrk.format("GET", "/users/42"),
    wrk.format("POST", "/echo", { ["Content-Type"] = "application/octet-stream" }, body),
}
LUA
cat "$work/requests.lua" - >"$work/mix.lua" <<'LUA'
local i = 0
request = function()
    i = i % #mix + 1
    return mix[i]
end
LUA
cat "$work/requests.lua" - >"$work/pipelined.lua" <<'LUA'
local batch = {}
for i = 1, 16 do
    batch[i] = mix[(i - 1) % #mix + 1]
end
local pipelined = table.concat(batch)
request = function()
    return pipelined
end
LUA

# Prints req/s of one wrk run; fails on socket errors or non-2xx responses.
run_wrk() { # port workload
    local script=()
    case "$2" in
        mix) script=(-s "$work/mix.lua") ;;
        pipelined) script=(-s "$work/pipelined.lua") ;;
    esac
    local out
    out=$(taskset -c 1 wrk -t1 -c"$connections" -d"${seconds}s" "${script[@]}" \
        "http://127.0.0.1:$1/hello")
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
        echo "wrk reported errors against port $1 ($2):" >&2
        echo "$out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

workloads=(hello mix pipelined)
echo "wrk -t1 -c$connections -d${seconds}s, server on CPU 0, wrk on CPU 1, $rounds rounds"
for r in $(seq "$rounds"); do
    for w in "${workloads[@]}"; do
        if [ $((r % 2)) = 1 ]; then
            order=(bare in-flight minimal layered)
        else
            order=(layered minimal in-flight bare)
        fi
        for v in "${order[@]}"; do
            case "$v" in
                bare) port=$bare_port ;;
                in-flight) port=$in_flight_port ;;
                minimal) port=$minimal_port ;;
                layered) port=$layered_port ;;
            esac
            rps=$(run_wrk "$port" "$w")
            echo "$rps" >>"$work/$w.$v"
            printf 'round %d  %-9s  %-9s  %10.0f req/s\n' "$r" "$w" "$v" "$rps"
        done
    done
done

echo
# Ratios of medians, and the median (with the range) of each round's own ratio to the bare
# run of that round: pairing cancels the machine's drift between rounds.
ratios() { # workload variant
    paste -d' ' "$work/$1.bare" "$work/$1.$2" | awk '{ print $2 / $1 }' | sort -g \
        | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
                 printf "%.3f (%.3f-%.3f)", m, v[1], v[NR] }'
}
printf '%-9s  %10s  %10s  %10s  %10s  %14s  %12s  %12s  %21s  %21s  %21s\n' workload bare \
    in-flight minimal layered in-flight/bare minimal/bare layered/bare "paired in-flight/bare" \
    "paired minimal/bare" "paired layered/bare"
for w in "${workloads[@]}"; do
    b=$(median <"$work/$w.bare")
    f=$(median <"$work/$w.in-flight")
    m=$(median <"$work/$w.minimal")
    l=$(median <"$work/$w.layered")
    awk -v w="$w" -v b="$b" -v f="$f" -v m="$m" -v l="$l" -v pf="$(ratios "$w" in-flight)" \
        -v pm="$(ratios "$w" minimal)" -v pl="$(ratios "$w" layered)" \
        'BEGIN { printf "%-9s  %10.0f  %10.0f  %10.0f  %10.0f  %14.3f  %12.3f  %12.3f  %21s  %21s  %21s\n",
                 w, b, f, m, l, f / b, m / b, l / b, pf, pm, pl }'
done
recorded=$(curl -fs "http://127.0.0.1:$layered_port/stats/data" \
    | grep -o '"requests_total":[0-9]*' | head -1 | cut -d: -f2)
echo "requests recorded by the layered server: ${recorded:-unknown}"
