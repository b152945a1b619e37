#!/usr/bin/env bash
# Installs every build, runtime and test dependency of Sesame from Debian's packages.
# Idempotent: packages already present are skipped by apt-get; run as root.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
  # libraries (DESIGN.md, "Dependencies")
  libssl-dev libevent-dev libc-ares-dev libsqlite3-dev libpq-dev libjansson-dev
  libinih-dev libgmime-3.0-dev libcurl4-openssl-dev libpsl-dev
  # runtime tools
  openssl sqlite3 ca-certificates
  # test clients and peers
  python3 python3-pytest python3-boto3 python3-dnslib python3-aiosmtpd python3-dkim python3-nacl
  python3-dnspython python3-cryptography awscli
  # independent DKIM verifiers (RSA and Ed25519) and a zone file checker
  libmail-dkim-perl libcryptx-perl opendkim-tools bind9-utils
  swaks libnet-ssleay-perl curl wrk
  # a real MTA relaying through Sesame's SMTP interface (tests start private instances)
  postfix libsasl2-modules
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
