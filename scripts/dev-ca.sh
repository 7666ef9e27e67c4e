#!/usr/bin/env bash
# Makes a fleet CA for trials, and a certificate for the MQTT broker signed
# by it, with openssl:
#
#   scripts/dev-ca.sh DIR [BROKER-HOSTNAME]
#
# DIR/ca.crt, DIR/ca.key          the fleet CA: ECDSA P-256, 10 years,
#                                 CA:TRUE, keyUsage keyCertSign, cRLSign
# DIR/server.crt, DIR/server.key  the broker's certificate: ECDSA P-256,
#                                 2 years, serverAuth, for localhost,
#                                 127.0.0.1, ::1 and BROKER-HOSTNAME if given
#
# Existing files in DIR are never overwritten: the script stops instead.
# For a real fleet, keep ca.key off the broker and off shared machines
# (outpostctl provision needs it only when issuing certificates).
set -euo pipefail

usage() {
	echo "usage: scripts/dev-ca.sh DIR [BROKER-HOSTNAME]" >&2
	echo "  makes DIR/ca.crt, ca.key (a fleet CA for trials) and server.crt, server.key (the broker's)" >&2
	exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
case "$1" in -h | --help) usage ;; esac
dir=$1
host=${2:-}

if ! command -v openssl >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "openssl is missing: installing the Debian package openssl"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends openssl >/dev/null
	else
		echo "dev-ca.sh needs the openssl command, which is not installed." >&2
		echo "Install it with: sudo apt-get install openssl   (Debian, Ubuntu, Raspberry Pi OS)" >&2
		exit 1
	fi
fi
# -addext and -copy_extensions need OpenSSL 1.1.1 or later.
ver=$(openssl version | awk '{print $2}')
case "$ver" in
0.* | 1.0.* | 1.1.0*)
	echo "dev-ca.sh needs OpenSSL 1.1.1 or later; this is $ver: upgrade the openssl package" >&2
	exit 1
	;;
esac

if [ -n "$host" ] && ! printf '%s' "$host" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'; then
	echo "dev-ca.sh: broker hostname '$host' is not a DNS name (letters, digits, '-' and '.')" >&2
	exit 2
fi

mkdir -p "$dir"
for f in ca.crt ca.key server.crt server.key; do
	if [ -e "$dir/$f" ]; then
		echo "dev-ca.sh: $dir/$f already exists; nothing was changed. Use another DIR, or remove the old files if you mean to replace the CA (every unit's certificate must then be issued again)." >&2
		exit 1
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umask 077

# The CA.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days 3650 \
	-subj "/O=Outpost fleet/CN=Outpost fleet CA (trial)" \
	-addext "basicConstraints=critical,CA:TRUE" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-addext "subjectKeyIdentifier=hash" \
	-out "$tmp/ca.crt"

# The broker's certificate.
san="DNS:localhost,IP:127.0.0.1,IP:::1"
cn=localhost
if [ -n "$host" ]; then
	san="DNS:$host,$san"
	cn=$host
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server.key" 2>/dev/null
openssl req -new -key "$tmp/server.key" -subj "/O=Outpost fleet/CN=$cn" -out "$tmp/server.csr"
cat >"$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" \
	-set_serial "0x$(openssl rand -hex 16)" -days 730 -sha256 \
	-extfile "$tmp/server.ext" -out "$tmp/server.crt" 2>/dev/null
openssl verify -CAfile "$tmp/ca.crt" "$tmp/server.crt" >/dev/null

install -m 0644 "$tmp/ca.crt" "$dir/ca.crt"
install -m 0600 "$tmp/ca.key" "$dir/ca.key"
install -m 0644 "$tmp/server.crt" "$dir/server.crt"
install -m 0600 "$tmp/server.key" "$dir/server.key"

ca_fp=$(openssl x509 -in "$dir/ca.crt" -noout -fingerprint -sha256 | cut -d= -f2)
cat <<MSG
Wrote, in $dir:
  ca.crt       the fleet CA's certificate (10 years; SHA-256 $ca_fp)
  ca.key       the fleet CA's key: secret (mode 0600); it signs every unit's certificate
  server.crt   the broker's certificate, for $san (2 years)
  server.key   the broker's key: secret (mode 0600)

Next steps:
  1. The broker (mosquitto): copy ca.crt, server.crt and server.key to
     /etc/mosquitto/certs/ (server.key readable by the mosquitto user only),
     install configs/mosquitto/outpost-tls.conf in /etc/mosquitto/conf.d/ and
     configs/mosquitto/outpost.acl as /etc/mosquitto/outpost.acl, then
     'systemctl restart mosquitto'.
  2. An operator's certificate for outpostctl:
       outpostctl provision operator NAME --ca $dir/ca.crt --ca-key $dir/ca.key --registry REGISTRY-DIR -o OUTDIR
     then add the printed block to /etc/mosquitto/outpost.acl.
  3. Each unit:
       outpostctl provision UNIT-ID --ca $dir/ca.crt --ca-key $dir/ca.key --registry REGISTRY-DIR \\
         --broker ssl://${host:-BROKER-HOST}:8883 --site "..." -o OUTDIR
     and follow the steps it prints.
MSG
