#!/usr/bin/env bash
# `make bench`: install what the benchmark needs (npm ci from the lock files, the Python
# packages of bench/requirements.txt into .venv), then run bench/run.py with the arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in bench/driver bench/peer; do
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done
stamp=.venv/.bench-installed
if [ ! -f "$stamp" ] || [ bench/requirements.txt -nt "$stamp" ]; then
    .venv/bin/pip install --quiet -r bench/requirements.txt
    touch "$stamp"
fi
exec .venv/bin/python bench/run.py "$@"
