#!/usr/bin/env python3
"""Checks that the crate's `rust-version` is at least the `rust-version` of every dependency
a user's build compiles, for each feature set: default, `--no-default-features` and
`--all-features`.

The dependencies of a build are listed by `cargo tree -e normal,build --target all`: normal
and build dependencies (both are compiled when the crate is built), on every platform, with
features resolved as in a user's build, so dev-dependencies and the features only they turn
on do not count. Each dependency's declared `rust-version` comes from `cargo metadata
--format-version 1`. Exits with status 1, naming each dependency that needs a newer Rust,
when the crate's `rust-version` is lower than one of them.
"""

import json
import subprocess
import sys

FEATURE_SETS = [
    ("default features", []),
    ("--no-default-features", ["--no-default-features"]),
    ("--all-features", ["--all-features"]),
]


def cargo(*args):
    return subprocess.run(
        ["cargo", *args], check=True, stdout=subprocess.PIPE, text=True
    ).stdout


def version_key(version):
    """`1.85` and `1.85.0` as `(1, 85, 0)`, for comparison."""
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def built_packages(flags):
    """`(name, version)` of every package a build with `flags` compiles, the crate's own
    included."""
    out = cargo(
        "tree",
        "-e",
        "normal,build",
        "--target",
        "all",
        "--prefix",
        "none",
        "--format",
        "{p}",
        *flags,
    )
    packages = set()
    for line in out.splitlines():
        # `tokio v1.54.1`, `tokio-macros v2.7.2 (proc-macro)`, `http v1.5.0 (*)`.
        fields = line.split()
        if len(fields) >= 2 and fields[1].startswith("v"):
            packages.add((fields[0], fields[1][1:]))
    return packages


def main():
    metadata = json.loads(cargo("metadata", "--format-version", "1", "--all-features"))
    declared = {(p["name"], p["version"]): p.get("rust_version") for p in metadata["packages"]}
    root = next(p for p in metadata["packages"] if p["id"] == metadata["resolve"]["root"])
    own = root.get("rust_version")
    if not own:
        print(f"error: Cargo.toml declares no rust-version for {root['name']}", file=sys.stderr)
        return 1

    failed = False
    for label, flags in FEATURE_SETS:
        # Highest rust-version first, then by name.
        needs = sorted(
            (
                (tuple(-part for part in version_key(rust)), name, version, rust)
                for (name, version) in built_packages(flags)
                if name != root["name"]
                for rust in [declared.get((name, version))]
                if rust
            )
        )
        too_new = [n for n in needs if version_key(n[3]) > version_key(own)]
        if too_new:
            failed = True
            print(
                f"error: rust-version = \"{own}\" in Cargo.toml is lower than what these "
                f"dependencies declare (with {label}):",
                file=sys.stderr,
            )
            for _, name, version, rust in too_new:
                print(f"  {name} {version} needs Rust {rust}", file=sys.stderr)
            print(
                f"  raise rust-version to \"{too_new[0][3]}\", or lock older versions of them "
                "(cargo update -p NAME --precise VERSION)",
                file=sys.stderr,
            )
        elif needs:
            _, name, version, rust = needs[0]
            print(
                f"rust-version {own} covers every dependency with {label} "
                f"(highest: {name} {version}, {rust})"
            )
        else:
            print(f"rust-version {own}: no dependency declares one with {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
