#!/usr/bin/env bash
# tests/certs.sh DIR - make a throw-away CA and a server certificate for the
# loopback stand-ins: DIR/ca.pem, ca-key.pem, server.pem (SANs 127.0.0.1, ::1,
# localhost) and server-key.pem, all ECDSA P-256, with the openssl command.
# Idempotent: an existing set that is still valid for a day is kept.
set -euo pipefail

dir=${1:?usage: tests/certs.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"

if [ -s ca.pem ] && [ -s ca-key.pem ] && [ -s server.pem ] && [ -s server-key.pem ] &&
    openssl x509 -in server.pem -noout -checkend 86400 >/dev/null 2>&1 &&
    openssl verify -CAfile ca.pem server.pem >/dev/null 2>&1; then
    exit 0
fi

# Build in a scratch directory and move the results in, so that a reader
# never sees half a set.
work=$(mktemp -d "$dir/.certs-XXXXXX")
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/ca-key.pem" -out "$work/ca.pem" -days 30 \
    -subj "/CN=topowire-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/server-key.pem" -out "$work/server.csr" \
    -subj "/CN=localhost" >/dev/null 2>&1

cat >"$work/ext.cnf" <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost
EXT

openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca-key.pem" \
    -set_serial "0x$(openssl rand -hex 8)" -days 30 -extfile "$work/ext.cnf" \
    -out "$work/server.pem" >/dev/null 2>&1

chmod 600 "$work/ca-key.pem" "$work/server-key.pem"
for f in ca-key.pem server-key.pem server.pem ca.pem; do
    mv -f "$work/$f" "$dir/$f"
done
