#!/usr/bin/env bash
# Installs the Debian packages of the real servers used by the tests and benchmarks:
# Kannel (bearerbox, smsbox, fakesmsc), PostgreSQL, Dovecot, swaks and libfaketime (the
# clock of a server under test).
set -euo pipefail

need=()
command -v bearerbox >/dev/null 2>&1 || [ -x /usr/sbin/bearerbox ] || need+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need+=(kannel-extras)
command -v swaks >/dev/null 2>&1 || need+=(swaks)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd)
[ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] \
  && [ -f /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || need+=(faketime)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${need[*]}"
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "missing packages ${need[*]}: run this script as root" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
