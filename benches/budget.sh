#!/usr/bin/env bash
# Every line of the performance budget in one run, each against its baseline from that run.
#
#   benches/budget.sh [LOOPBACK_ROUNDS] [LOOPBACK_SECONDS]
#
# Runs, one after the other on an otherwise idle machine (about 7 minutes with the defaults
# 9 and 2):
#   instructions  benches/callgrind.sh 2000            layered / bare        at most 1.4x
#   time          in_process time 41 20000             layered - bare        at most +350 ns
#   parallel      in_process parallel 21 20000 2       parallel efficiency   at least 0.9
#                 (2 threads at once against 1)        (TraceLayer's beside)
#   concurrent    cargo bench --bench layer --         the same from 1 and   at least 0.9
#                 concurrent/                          8 tasks on 2 workers
#   allocations   cargo test --release --test alloc    layered - bare        at most the
#                                                      in-flight counter's (axum's +3)
#   loopback      benches/loopback.sh ROUNDS SECONDS   layered / bare        at least 0.90
#   render        cargo bench --bench layer -- report  GET /stats/data       a few ms
#   memory        memory_growth unmatched              RSS growth over 1M    a few MiB
# then prints one table: the command's figure, its baseline, the ratio or difference, the
# budget and whether it is met (over loopback, both the ratio of the medians and the median of
# each round's paired ratio must be). Every tool's own output is kept in the directory printed at
# the end. Needs valgrind, wrk, taskset and curl (`apt-get install valgrind wrk util-linux curl`).
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-9}
seconds=${2:-2}
for arg in "$rounds" "$seconds"; do
    case "$arg" in
        *[!0-9]* | '') echo "usage: $0 [LOOPBACK_ROUNDS] [LOOPBACK_SECONDS]" >&2; exit 2 ;;
    esac
done
logs=$(mktemp -d "${TMPDIR:-/tmp}/tower-stats-budget.XXXXXX")

step() { # name, then the command
    local name=$1
    shift
    echo "== $name: $*" >&2
    if ! "$@" >"$logs/$name.txt" 2>&1; then
        echo "$name failed; its output:" >&2
        cat "$logs/$name.txt" >&2
        exit 1
    fi
}

# The benchmark programs (benches/*.rs, `cargo bench --no-run` in release), all built first
# so that a build error stops the run before any measurement.
in_process=$(benches/executable.sh in_process)
benches/executable.sh server >/dev/null
memory_growth=$(benches/executable.sh memory_growth)
step instructions benches/callgrind.sh 2000
step time "$in_process" time 41 20000
step parallel "$in_process" parallel 21 20000 2
step concurrent cargo bench --bench layer -- --noplot concurrent/
step allocations cargo test --release --quiet --test alloc -- --nocapture --test-threads 1
step loopback benches/loopback.sh "$rounds" "$seconds"
step render cargo bench --bench layer -- --noplot report/get
step memory "$memory_growth" unmatched

# Instructions: "bare  7184 instructions/request ..." and "layered  1.394x bare (+2827)".
read -r ins_bare ins_layered < <(awk '
    $2 ~ /^[0-9]+$/ && $3 == "instructions/request" { n[$1] = $2 }
    END { print n["bare"], n["layered"] }' "$logs/instructions.txt")
# Time: the medians of bare and of the paired differences.
read -r time_bare time_diff < <(awk '
    $1 == "bare" && $2 == "median" { b = $3 }
    /median of paired differences/ { d = $(NF - 1); sub(/^\+/, "", d) }
    END { print b, d }' "$logs/time.txt")
# Parallel: "layered  1395.0 ns  +484.0 ns  780.0 ns  +300.0 ns  0.81", one line per variant.
read -r par_trace par_layered par_added1 par_added2 < <(awk '
    $3 == "ns" && $5 == "ns" && $7 == "ns" && $9 == "ns" { e[$1] = $10; a1[$1] = $4; a2[$1] = $8 }
    END { print e["trace"], e["layered"], a1["layered"], a2["layered"] }' "$logs/parallel.txt")
# Concurrent: criterion's median per request of concurrent/VARIANT/TASKS, in ns; the parallel
# efficiency from 1 task (one worker busy) and 8 tasks (both busy).
concurrent_efficiency() { # variant
    awk -v v="$1" '
        /concurrent\// { name = $1 }
        /time:/ && name != "" {
            for (i = 1; i <= NF; i++) if ($i ~ /^\[/) {
                t = $(i + 2); u = $(i + 3)
                t *= (u == "µs" || u == "us") ? 1000 : (u == "ms" ? 1000000 : 1)
                ns[name] = t; break
            }
            name = "" }
        END {
            a1 = ns["concurrent/" v "/1"] - ns["concurrent/bare/1"]
            a8 = ns["concurrent/" v "/8"] - ns["concurrent/bare/8"]
            if (a8 > 0) printf "%.2f", a1 / (2 * a8); else printf "-"
        }' "$logs/concurrent.txt"
}
conc_trace=$(concurrent_efficiency trace)
conc_layered=$(concurrent_efficiency layered)
# Allocations: one line per route, in process and over loopback (the lines against the bare
# app; the test's lines with filters configured compare with the in-flight counter only).
allocs=$(awk '/allocations\/request/ && / bare / {
        route = $0; sub(/ +allocations\/request.*/, "", route); sub(/^[^A-Za-z]+/, "", route)
        if ($0 ~ /over loopback/) route = route " (loopback)"
        b = $0; sub(/.* bare /, "", b); b += 0
        f = $0; sub(/.* counter /, "", f); f += 0
        l = $0; sub(/.* layered /, "", l); l += 0
        printf "%s\t%.2f\t%.2f\t%.2f\n", route, b, f - b, l - b }' "$logs/allocations.txt")
# Loopback: the summary rows (workload, bare, in-flight, minimal, layered, ratios...).
loopback=$(awk '$1 ~ /^(hello|mix|pipelined)$/ && $2 ~ /^[0-9]+$/ && NF >= 8 {
        print $1 "\t" $2 "\t" $5 "\t" $8 "\t" $13 }' "$logs/loopback.txt")
# Render: criterion's "time: [low median high]" after the bench's name.
render=$(awk '
    /report\/get\// { name = $1 }
    /time:/ && name != "" {
        for (i = 1; i <= NF; i++) if ($i ~ /^\[/) { print name "\t" $(i + 2) " " $(i + 3); break }
        name = "" }' "$logs/render.txt")
# Memory: RSS before and after the million requests.
read -r rss_before rss_after < <(awk '$2 == "requests" && $3 == "RSS" { v[++n] = $4 }
    END { print v[1], v[n] }' "$logs/memory.txt")

verdict() { awk -v ok="$1" 'BEGIN { print (ok ? "met" : "NOT met") }'; }

echo
echo "performance budget, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '%-40s %-16s %-16s %-18s %-14s %s\n' line baseline tower-stats "ratio / delta" budget verdict
awk -v b="$ins_bare" -v l="$ins_layered" 'BEGIN {
    printf "%-40s %-16s %-16s %-18s %-14s %s\n", "instructions/request", "bare " b, l,
        sprintf("%.3fx", l / b), "<= 1.4x", (l / b <= 1.4 ? "met" : "NOT met") }'
awk -v b="$time_bare" -v d="$time_diff" 'BEGIN {
    printf "%-40s %-16s %-16s %-18s %-14s %s\n", "time/request (ns)", "bare " b, b + d,
        sprintf("%+.1f ns", d), "<= +350 ns", (d <= 350 ? "met" : "NOT met") }'
awk -v t="$par_trace" -v l="$par_layered" -v a1="$par_added1" -v a2="$par_added2" 'BEGIN {
    printf "%-40s %-16s %-16s %-18s %-14s %s\n", "parallel efficiency, 2 threads", "trace " t, l,
        "+" a1 + 0 " / " a2 " ns", ">= 0.9", (l + 0 >= 0.9 ? "met" : "NOT met") }'
awk -v t="$conc_trace" -v l="$conc_layered" 'BEGIN {
    printf "%-40s %-16s %-16s %-18s %-14s %s\n", "parallel efficiency, concurrent/ 8 tasks",
        "trace " t, l, "-", ">= 0.9", (l + 0 >= 0.9 ? "met" : "NOT met") }'
while IFS=$'\t' read -r route bare floor layered; do
    awk -v r="$route" -v b="$bare" -v f="$floor" -v l="$layered" 'BEGIN {
        printf "%-40s %-16s %-16s %-18s %-14s %s\n", "allocations " r, "bare " b,
            b + l, sprintf("%+.2f", l), sprintf("<= %+.2f", f), (l <= f + 0.1 ? "met" : "NOT met") }'
done <<<"$allocs"
while IFS=$'\t' read -r workload bare layered ratio paired; do
    awk -v w="$workload" -v b="$bare" -v l="$layered" -v r="$ratio" -v p="$paired" 'BEGIN {
        printf "%-40s %-16s %-16s %-18s %-14s %s\n", "loopback req/s " w, "bare " b, l,
            r " (paired " p ")", ">= 0.90", (r >= 0.90 && p >= 0.90 ? "met" : "NOT met") }'
done <<<"$loopback"
while IFS=$'\t' read -r name time; do
    printf '%-40s %-16s %-16s %-18s %-14s %s\n' "render ${name#report/get/}" - "$time" - \
        "a few ms" "$(awk -v t="$time" 'BEGIN { split(t, a, " ");
            ms = a[2] == "ms" ? a[1] : a[2] == "µs" || a[2] == "us" ? a[1] / 1000 : a[1] * 1000;
            print (ms <= 10 ? "met" : "NOT met") }')"
done <<<"$render"
awk -v b="$rss_before" -v a="$rss_after" 'BEGIN {
    printf "%-40s %-16s %-16s %-18s %-14s %s\n", "memory, 1M random paths", "RSS " b " MiB",
        a " MiB", sprintf("%+.2f MiB", a - b), "a few MiB", (a - b <= 4 ? "met" : "NOT met") }'
echo
echo "allocations: as in tests/alloc.rs, a tenth per request on top is allowed for the latency"
echo "windows' slots, which allocate their counters the first time a slot is used."
echo "each tool's own output: $logs"
