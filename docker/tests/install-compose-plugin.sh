#!/bin/sh
# Install the Docker Compose v2 CLI plugin for the Docker deployment test (make docker-test),
# so that docker/compose.yml is exercised with the plugin (test_stack.py) as well as with
# Debian 12's docker-compose 1.29 (test_playbook.py, the role's default). Debian 12 has no
# plugin: take Debian 13's docker-compose package (a static Go binary) from Debian's own
# archive, with apt and a private source list, so nothing of this machine's apt setup changes.
# Usage: install-compose-plugin.sh [PLUGIN_DIR]   (default /usr/local/lib/docker/cli-plugins)
set -eu

plugin_dir=${1:-/usr/local/lib/docker/cli-plugins}
if [ -x "$plugin_dir/docker-compose" ]; then
    echo "compose plugin already in $plugin_dir"
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/download"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
    > "$work/sources.list"
set -- -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- \
    -o "Dir::State::Lists=$work/lists" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root
apt-get "$@" update -qq
(cd "$work/download" && apt-get "$@" download docker-compose)
mkdir -p "$plugin_dir"
dpkg-deb --fsys-tarfile "$work"/download/docker-compose_*.deb \
    | tar -xO ./usr/libexec/docker/cli-plugins/docker-compose > "$work/docker-compose"
install -m 0755 "$work/docker-compose" "$plugin_dir/docker-compose"
docker compose version
