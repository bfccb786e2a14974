#!/usr/bin/env bash
# Install the Debian packages that the test suite starts for real, when missing.
# Runs as root on CI; elsewhere it says what is missing instead of failing silently.
set -euo pipefail
# The list lives in .system-deps, one package a line (chromium, nginx, dnsmasq, ...).
need=()
want=()
[ -f .system-deps ] && mapfile -t want < <(grep -v '^#' .system-deps | sed '/^\s*$/d')
for pkg in "${want[@]:-}"; do
  [ -n "$pkg" ] || continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages for the tests: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing Debian packages for the tests: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
