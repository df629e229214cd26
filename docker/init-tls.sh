#!/bin/sh
# Make the site CA and the front's certificate with openssl, in the layout the Ansible tls
# role writes (inventory/<site>/pki), for a Docker site without Ansible:
#   pki/ca.crt                 the site CA certificate (clients import it)
#   pki/private/ca.key         0600 in a 0700 directory; never mounted into a container
#   pki/hosts/<host>.crt/.key  the front's certificate and key (compose.yml mounts these)
# The same profile as the role: ECDSA P-384 CA (SHA-384, 10 years, pathlen 0), ECDSA P-256
# host key, 365 days, serverAuth, every name clients use as a subjectAltName.
#   ./init-tls.sh [--pki DIR] [--host HOST] [--renew] NAME...
# NAME: each DNS name and IP address clients use (chat.example.lan, 10.0.0.10, chat.local).
# An existing CA is kept; an existing host certificate is kept unless --renew is given.
set -eu
pki="$(cd "$(dirname "$0")" && pwd)/pki"
host=chat
renew=false
while [ $# -gt 0 ]; do
    case "$1" in
    --pki) pki="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --renew) renew=true; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "init-tls.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
    esac
done
if [ $# -eq 0 ]; then
    echo "usage: init-tls.sh [--pki DIR] [--host HOST] [--renew] NAME..." >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "init-tls.sh: openssl is missing" >&2; exit 1; }
umask 077
mkdir -p "$pki/private" "$pki/hosts"
chmod 0755 "$pki"
chmod 0700 "$pki/private" "$pki/hosts"
config="$(mktemp)"
trap 'rm -f "$config" "$pki/hosts/$host.csr.tmp"' EXIT

sans=""
for name in "$@"; do
    if printf '%s' "$name" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}$|:'; then
        kind=IP
    else
        kind=DNS
    fi
    sans="${sans:+$sans,}$kind:$name"
done
cat > "$config" <<EOF
[req]
distinguished_name = dn
prompt = no
[dn]
O = Secure Chat M2M
[ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[host]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

if [ ! -f "$pki/ca.crt" ]; then
    [ -f "$pki/private/ca.key" ] \
        || openssl ecparam -name secp384r1 -genkey -noout -out "$pki/private/ca.key"
    openssl req -new -x509 -config "$config" -extensions ca -key "$pki/private/ca.key" \
        -subj "/O=Secure Chat M2M/CN=Secure Chat M2M CA $(printf %.32s "$1") $(date -u +%F)" \
        -sha384 -days 3650 -out "$pki/ca.crt"
    chmod 0644 "$pki/ca.crt"
    echo "init-tls.sh: made the site CA $pki/ca.crt" >&2
fi
if [ "$renew" = true ] || [ ! -f "$pki/hosts/$host.crt" ]; then
    [ -f "$pki/hosts/$host.key" ] \
        || openssl ecparam -name prime256v1 -genkey -noout -out "$pki/hosts/$host.key"
    openssl req -new -config "$config" -key "$pki/hosts/$host.key" \
        -subj "/CN=$(printf %.64s "$1")" -out "$pki/hosts/$host.csr.tmp"
    openssl x509 -req -in "$pki/hosts/$host.csr.tmp" -CA "$pki/ca.crt" \
        -CAkey "$pki/private/ca.key" -set_serial "0x$(openssl rand -hex 16)" -sha384 -days 365 \
        -extfile "$config" -extensions host -out "$pki/hosts/$host.crt" 2>/dev/null
    chmod 0644 "$pki/hosts/$host.crt"
    chmod 0600 "$pki/hosts/$host.key"
    echo "init-tls.sh: made $pki/hosts/$host.crt for $sans" >&2
fi
echo "CA SHA-256 fingerprint (compare it when importing):" \
    "$(openssl x509 -in "$pki/ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)"
