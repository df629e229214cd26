#!/usr/bin/env bash
# Build the Secure Chat images offline from an unpacked bundle (docs/docker.md):
#   docker/build-images.sh --tree BUNDLE_DIR --base DEBOOTSTRAP_TREE --tag TAG
# BUNDLE_DIR holds apt/, wheelhouse/ and requirements/ (an unpacked bundle, or the tree that
# `offline-bundle.sh build --with-docker-images` is writing); DEBOOTSTRAP_TREE is a Debian 12
# `debootstrap --variant=minbase` tree (the bundle's cache: ~/.cache/securechat-bundle/base-bookworm).
# Makes securechat/base, securechat/app, securechat/mariadb and securechat/nginx, all :TAG.
# Nothing is pulled and no build step has a network: the base is `docker import`ed, the
# software is installed in `docker run --network none` containers from the bind-mounted
# bundle and committed, and the small Dockerfiles add configuration with `--network none`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# The classic builder: BuildKit would need the buildx plugin with newer CLIs, and the
# Dockerfiles here only copy small files.
export DOCKER_BUILDKIT=0

die() {
    echo "build-images.sh: error: $*" >&2
    exit 1
}

tree="" base="" tag=""
while [ $# -gt 0 ]; do
    case "$1" in
    --tree) tree="${2:-}"; shift 2 ;;
    --base) base="${2:-}"; shift 2 ;;
    --tag) tag="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-images.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$tree" ] && [ -n "$base" ] && [ -n "$tag" ] || {
    echo "usage: build-images.sh --tree BUNDLE_DIR --base DEBOOTSTRAP_TREE --tag TAG" >&2
    exit 2
}
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "not a Docker tag: $tag"
tree="$(cd "$tree" && pwd)"
for needed in apt/Packages apt/securechat-bundle.gpg requirements/server.lock \
    requirements/server-local.txt; do
    [ -f "$tree/$needed" ] || die "$tree/$needed is missing: build the bundle with its apt repository"
done
[ -f "$base/etc/debian_version" ] || die "$base is not a debootstrap tree"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 \
    || die "no Docker Engine answers${DOCKER_HOST:+ at $DOCKER_HOST}: start dockerd (docs/docker.md)"

version_label="org.opencontainers.image.version=$tag"
created=()
log="$(mktemp)"
cleanup() {
    rm -f "$log"
    for container in "${created[@]}"; do
        docker rm --force "$container" >/dev/null 2>&1 || true
    done
    for stage in base-import app-stage mariadb-stage nginx-stage; do
        docker image rm "securechat/$stage:$tag" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# Run a command with its output kept aside; show the end of it only when it fails (the
# classic builder's deprecation notice and apt's progress are noise otherwise).
quiet() {
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "failed: $*"
    fi
}

echo "image securechat/base:$tag (docker import of $base)…" >&2
# No apt source, package lists or caches of the build machine, no host resolver or identity:
# a real air-gapped host has none either.
tar -C "$base" --numeric-owner --sort=name \
    --exclude=./etc/apt/sources.list --exclude='./etc/apt/sources.list.d/*' \
    --exclude='./var/lib/apt/lists/*' --exclude='./var/cache/apt/*' \
    --exclude='./var/cache/debconf/*-old' --exclude='./var/log/*' \
    --exclude=./etc/resolv.conf --exclude=./etc/hostname --exclude=./etc/machine-id \
    --exclude='./usr/share/man/*' --exclude='./usr/share/info/*' \
    --exclude='./usr/share/locale/*' --exclude='./usr/share/doc/*/[!c]*' --exclude='./usr/share/doc/*/changelog*' \
    -c . | docker import - "securechat/base-import:$tag" >/dev/null
quiet docker build --quiet --network none --label "$version_label" \
    --build-arg "IMPORTED=securechat/base-import:$tag" \
    --tag "securechat/base:$tag" "$here/base"
docker image rm "securechat/base-import:$tag" >/dev/null

for image in app mariadb nginx; do
    echo "image securechat/$image:$tag (from the bundle, no network)…" >&2
    container="$(docker create --network none \
        --volume "$tree/apt:/bundle/apt:ro" \
        --volume "$tree/wheelhouse:/bundle/wheelhouse:ro" \
        --volume "$tree/requirements:/bundle/requirements:ro" \
        --volume "$here/setup:/setup:ro" \
        "securechat/base:$tag" /bin/sh /setup/install.sh "$image")"
    created+=("$container")
    quiet docker start --attach "$container"
    docker commit "$container" "securechat/$image-stage:$tag" >/dev/null
    docker rm "$container" >/dev/null
    quiet docker build --quiet --network none --label "$version_label" \
        --build-arg "STAGE=securechat/$image-stage:$tag" \
        --tag "securechat/$image:$tag" "$here/$image"
    docker image rm "securechat/$image-stage:$tag" >/dev/null
done
echo "built securechat/{base,app,mariadb,nginx}:$tag" >&2
