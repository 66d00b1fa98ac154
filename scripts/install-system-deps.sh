#!/usr/bin/env bash
# Debian packages the tests use (run as root; CI calls it). Idempotent: installs only what is missing.
# nginx: the replicated-API integration test starts its own nginx with its own config.
set -euo pipefail
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: not root, skipping ${need[*]} (the tests that need them skip)" >&2
  exit 0
fi
# Keep the package from starting a daemon on port 80: tests start their own instances.
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
[ "$created" -eq 1 ] && rm -f "$policy"
exit 0
