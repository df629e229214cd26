#!/bin/sh
# Runs inside a throwaway build container that has no network (`docker run --network none`):
# installs the software of one image from the bundle, which build-images.sh bind-mounts
# read-only at /bundle. The bundle's signed apt repository is the only apt source, checked
# against the bundle's own keyring; Python wheels come from its wheelhouse, hash-checked.
#   install.sh app|mariadb|nginx
set -eu
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1

apt_install() {
    echo "deb [signed-by=/bundle/apt/securechat-bundle.gpg] file:/bundle/apt ./" \
        > /etc/apt/sources.list.d/securechat-bundle.list
    # Packages must not start services in a build container.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    apt-get -q update
    apt-get -q install --yes --no-install-recommends "$@"
    rm -f /etc/apt/sources.list.d/securechat-bundle.list /usr/sbin/policy-rc.d
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old
}

case "${1:-}" in
app)
    groupadd --system --gid 10001 securechat
    useradd --system --uid 10001 --gid securechat --home-dir /var/lib/securechat \
        --no-create-home --shell /usr/sbin/nologin securechat
    apt_install python3 python3-venv
    python3 -m venv /opt/securechat/venv
    /opt/securechat/venv/bin/pip install --quiet --no-index --find-links /bundle/wheelhouse \
        --require-hashes --only-binary :all: \
        -r /bundle/requirements/server.lock -r /bundle/requirements/server-local.txt
    /opt/securechat/venv/bin/securechat --version
    # The uploads are the only state of the app; a named volume is mounted here.
    install -d -o securechat -g securechat -m 0750 /var/lib/securechat \
        /var/lib/securechat/uploads
    ;;
mariadb)
    # A fixed uid in the system range (Debian's postinst keeps an existing system user), so
    # that the tmpfs and volume ownership in compose.yml can name it.
    groupadd --system --gid 999 mysql
    useradd --system --uid 999 --gid mysql --home-dir /nonexistent --no-create-home \
        --shell /bin/false mysql
    apt_install mariadb-server
    # The entrypoint initialises the data directory on the volume at first start, with the
    # accounts from the environment; nothing made at build time may end up in a volume.
    rm -rf /var/lib/mysql
    install -d -o mysql -g mysql -m 0750 /var/lib/mysql
    install -d -o mysql -g mysql -m 0755 /run/mysqld
    ;;
nginx)
    apt_install nginx-light openssl
    rm -f /etc/nginx/sites-enabled/default
    ;;
*)
    echo "usage: install.sh app|mariadb|nginx" >&2
    exit 2
    ;;
esac
