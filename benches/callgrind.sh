#!/usr/bin/env bash
# Instructions per request of the stats layer, under callgrind (exactly repeatable).
#
#   benches/callgrind.sh [N] [--profile] [--redis] [--tracing]
#
# Builds benches/in_process.rs in release (`cargo bench --no-run`, through
# benches/executable.sh), runs the mix (GET /hello, GET /users/{id}, 1 KiB POST /echo)
# through `oneshot` on a current-thread runtime for N and 2N requests (default 2000 and
# 4000) for each variant, and prints (I(2N) - I(N)) / N: start-up and set-up cancel.
# Variants: bare, tower-http's in-flight counter, a minimal per-route latency layer
# (tests/common/minimal.rs), tower-http's TraceLayer without a subscriber, and the stats
# layer. With --profile, also prints the tower-stats functions that cost the most per
# request (inclusive, same N/2N difference). With --redis, builds with the `redis` feature and
# runs bare, the layer, and the layer with Redis configured (`layered-redis`). With --tracing,
# builds with the `tracing` feature and runs bare, the layer, the layer under a subscriber
# with the stats `tracing` layer and no span in the handlers (`traced`), and GET /spans (8
# spans per request) under a subscriber without and with the stats `tracing` layer
# (`spans-registry`, `spans-traced`); it prints the instructions per span the layer adds.
set -euo pipefail
cd "$(dirname "$0")/.."

n=2000
profile=0
redis=0
tracing=0
for arg in "$@"; do
    case "$arg" in
        --profile) profile=1 ;;
        --redis) redis=1 ;;
        --tracing) tracing=1 ;;
        *[!0-9]* | '') echo "usage: $0 [N] [--profile] [--redis] [--tracing]" >&2; exit 2 ;;
        *) n=$arg ;;
    esac
done
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

# Plain release (symbols, no debug info): the profile then has one entry per function, with
# what was inlined into it.
if [ "$redis" = 1 ]; then
    bin=$(BENCH_FEATURES=redis benches/executable.sh in_process)
elif [ "$tracing" = 1 ]; then
    bin=$(BENCH_FEATURES=tracing benches/executable.sh in_process)
else
    bin=$(benches/executable.sh in_process)
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Total instructions of one run, from callgrind's summary line.
instructions() { # variant requests
    valgrind --tool=callgrind --callgrind-out-file="$out/$1.$2" "$bin" run "$1" "$2" 2>&1 \
        | awk '/Collected :/ { print $NF }'
}

variants=(bare in-flight minimal trace layered)
if [ "$redis" = 1 ]; then
    # One build with the `redis` feature: the layer without and with Redis configured.
    variants=(bare layered layered-redis)
elif [ "$tracing" = 1 ]; then
    variants=(bare layered traced spans-registry spans-traced)
fi
declare -A per_request
echo "instructions/request, mix, callgrind, (I(2N) - I(N)) / N with N = $n"
for v in "${variants[@]}"; do
    one=$(instructions "$v" "$n")
    two=$(instructions "$v" $((2 * n)))
    per_request[$v]=$(( (two - one) / n ))
    printf '%-14s %8d instructions/request  (I(N) %d, I(2N) %d)\n' "$v" "${per_request[$v]}" "$one" "$two"
done
bare=${per_request[bare]}
for v in "${variants[@]}"; do
    awk -v v="$v" -v x="${per_request[$v]}" -v b="$bare" \
        'BEGIN { printf "%-14s %.3fx bare (%+d)\n", v, x / b, x - b }'
done
if [ "$tracing" = 1 ]; then
    awk -v a="${per_request[spans-registry]}" -v b="${per_request[spans-traced]}" \
        'BEGIN { printf "per span recorded: %+.0f instructions (spans-traced - spans-registry) / 8\n", (b - a) / 8 }'
fi

if [ "$profile" = 1 ]; then
    # Lines look like "1,234 (12.34%)  ???:function [object]"; keep count and function.
    parse() {
        awk '/^ *[0-9,]+ +\( *[0-9.]+%\) +/ {
                 c = $1; gsub(",", "", c)
                 f = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +(\?\?\?:)?/, "", f)
                 sub(/ \[[^]]*\]$/, "", f)
                 print c "\t" f }'
    }
    for k in "$n" $((2 * n)); do
        callgrind_annotate --auto=no --threshold=100 "$out/layered.$k" | parse >"$out/self.$k"
        callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$out/layered.$k" \
            | parse >"$out/incl.$k"
    done
    echo
    echo "layered: tower-stats functions per request ((2N - N) / N), by self cost; inclusive"
    echo "includes callees (for the service and the future: the inner app too)"
    printf '%8s %10s  %s\n' self inclusive function
    awk -F'\t' -v n="$n" '
        FNR == 1 { file++ }
        file == 1 { s1[$2] = $1 }
        file == 2 { s2[$2] = $1 }
        file == 3 { i1[$2] = $1 }
        file == 4 { i2[$2] = $1 }
        END {
            for (f in s2) {
                d = (s2[f] - s1[f]) / n
                if (f ~ /tower_stats/ && d >= 1)
                    printf "%8.0f %10.0f  %s\n", d, (i2[f] - i1[f]) / n, f
            }
        }
    ' "$out/self.$n" "$out/self.$((2 * n))" "$out/incl.$n" "$out/incl.$((2 * n))" \
        | sort -rn | head -25
fi
