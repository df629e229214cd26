#!/usr/bin/env bash
# `make bench`: install what the benchmark needs (npm ci from the lock files, the Python
# packages of bench/requirements.txt into .venv), run bench/run.py with the arguments, then the
# browser-side costs (bench/browser_costs.py; skipped with a message when Chromium is absent)
# when the whole suite runs. A run of chosen scenarios (--scenarios, as lever measurements
# use) leaves the browser out, unless --browser is given.
#   --no-browser     only the server scenarios
#   --browser        the browser-side costs also after chosen --scenarios
#   --browser-only   only the browser-side costs
# --quick and --out are passed on to browser_costs.py as well; everything else goes to run.py.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=1
servers=1
help=0
run_args=()
browser_args=()
out_next=0
for arg in "$@"; do
    if [ "$out_next" = 1 ]; then
        browser_args+=(--out "$arg")
        out_next=0
    fi
    case "$arg" in
        --no-browser) browser=0; continue ;;
        --browser) browser=2; continue ;;
        --browser-only) servers=0; continue ;;
        --scenarios | --scenarios=*) [ "$browser" = 1 ] && browser=0 ;;
        --quick) browser_args+=(--quick) ;;
        --out) out_next=1 ;;
        --out=*) browser_args+=("$arg") ;;
        -h | --help) help=1 ;;
    esac
    run_args+=("$arg")
done

if [ "$help" = 1 ]; then
    .venv/bin/python bench/run.py --help
    printf '\nrun.sh also takes --no-browser (skip the browser-side costs), --browser (run them\n'
    printf 'after chosen --scenarios too; without --scenarios they run anyway) and --browser-only;\n'
    printf 'the browser step: .venv/bin/python bench/browser_costs.py --help\n'
    exit 0
fi

if [ "$servers" = 1 ]; then
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
    .venv/bin/python bench/run.py "${run_args[@]}"
fi
if [ "$browser" != 0 ] || [ "$servers" = 0 ]; then
    .venv/bin/python bench/browser_costs.py "${browser_args[@]}"
fi
