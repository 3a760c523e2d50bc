#!/usr/bin/env bash
# Builds one benchmark program in release and prints the path of its executable.
#
#   benches/executable.sh NAME        (NAME: a [[bench]] target, e.g. in_process)
#
# `cargo bench --no-run` puts the executable under target/release/deps/ with a hash in its
# name; the path is taken from the `executable` field of Cargo's JSON messages (compiler
# diagnostics are still shown as usual, on stderr). Extra Cargo options (a profile override,
# for example) go through CARGO_* environment variables; BENCH_FEATURES adds crate features.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$#" = 1 ] || { echo "usage: $0 NAME" >&2; exit 2; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }

cargo bench --no-run --quiet --bench "$1" ${BENCH_FEATURES:+--features "$BENCH_FEATURES"} \
    --message-format=json-render-diagnostics \
    | python3 -c '
import json, sys

name = sys.argv[1]
found = []
for line in sys.stdin:
    try:
        message = json.loads(line)
    except ValueError:
        continue
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and target.get("name") == name
            and "bench" in target.get("kind", []) and message.get("executable")):
        found.append(message["executable"])
if len(found) != 1:
    sys.exit(f"benches/executable.sh: {len(found)} executables for the bench {name!r}")
print(found[0])
' "$1"
