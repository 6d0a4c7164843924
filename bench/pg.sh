#!/usr/bin/env bash
# PostgreSQL → PostgreSQL benchmark: installs what is missing, builds in release mode, runs
# `seren-bench pg` with the given arguments (default: --scale 60 --wide-rows 1500000, all methods).
#   bench/pg.sh                                   # full run (the reference anchors' data size)
#   bench/pg.sh --scale 2 --wide-rows 20000       # smoke run
#   bench/pg.sh --only ours,pgcopydb --record     # append the figures to bench/RESULTS.md
#   bench/pg.sh --rounds 3                        # every method 3 times in rotation, medians
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

need=()
# initdb/pgbench ship in the server package (postgresql-15 here), pulled in by postgresql-contrib.
if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then need+=(postgresql-contrib); fi
if ! command -v pgcopydb >/dev/null 2>&1; then need+=(pgcopydb); fi
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  if ! $SUDO apt-get install -y "${need[@]}"; then
    $SUDO apt-get update
    $SUDO apt-get install -y "${need[@]}"
  fi
fi

cargo build --release --workspace
exec ./target/release/seren-bench pg "$@"
