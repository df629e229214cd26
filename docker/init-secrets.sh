#!/bin/sh
# Write the secrets of the Docker stack into .env beside compose.yml (mode 0600), once: a
# second run keeps every value that is there and adds only what is missing. Never commit
# .env; back it up with the volumes (docs/docker.md). Letters and digits only, so that the
# values go into database URLs and SQL unescaped.
#   ./init-secrets.sh [ENV_FILE]      (default: .env next to this script)
set -eu
env_file="${1:-$(cd "$(dirname "$0")" && pwd)/.env}"
umask 077
[ -e "$env_file" ] || printf '%s\n' \
    "# Secure Chat M2M Docker stack: secrets made by init-secrets.sh. Never commit this file." \
    > "$env_file"
chmod 0600 "$env_file"

random() {
    LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c "$1"
}

for entry in SECURECHAT_SECRET_KEY:64 SECURECHAT_AUDIT_KEY:64 SECURECHAT_DB_PASSWORD:32 \
    SECURECHAT_DB_MIGRATE_PASSWORD:32 SECURECHAT_ADMIN_PASSWORD:24; do
    name="${entry%%:*}"
    if ! grep -q "^$name=." "$env_file"; then
        printf '%s=%s\n' "$name" "$(random "${entry#*:}")" >> "$env_file"
        echo "init-secrets.sh: made $name" >&2
    fi
done
echo "init-secrets.sh: $env_file (the first administrator is admin, password SECURECHAT_ADMIN_PASSWORD)" >&2
