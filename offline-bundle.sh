#!/usr/bin/env bash
# Build (on a connected Debian 12 machine) or verify (anywhere, offline) the signed bundle.
#   ./offline-bundle.sh [build] [--target T] [--out DIR] [--gpg-home DIR] [--key-id FPR]
#   ./offline-bundle.sh verify dist/securechat-m2m-<version>.tar.gz --key signing-key.asc
# Needs only python3 (3.11+) and gpg; see docs/bundle.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
for source in "$here/bundle/src" "$here/tools/bundle/src"; do
    if [ -d "$source/securechat_bundle" ]; then
        exec env PYTHONPATH="$source${PYTHONPATH:+:$PYTHONPATH}" python3 -m securechat_bundle.cli "$@"
    fi
done
echo "offline-bundle.sh: cannot find securechat_bundle next to this script" >&2
exit 2
