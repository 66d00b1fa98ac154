#!/usr/bin/env bash
# Debian packages the tests use (run as root; CI calls it). Idempotent: installs only what is missing.
# nginx: the replicated-API integration test starts its own nginx with its own config.
# podman runc debootstrap uidmap slirp4netns fuse-overlayfs: tests/container builds and runs the
#   image (scripts/build-image.sh); netavark aardvark-dns: the compose stack's network
#   (tests/stack). prometheus: promtool checks deploy/prometheus.
# chromium chromium-driver: the dashboard's browser test.
# wrk: bench/serve.py (the load generator).
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/bin/$1" ]; }
have nginx || need+=(nginx)
have podman || need+=(podman)
have runc || need+=(runc)
have debootstrap || need+=(debootstrap)
have newuidmap || need+=(uidmap)
have slirp4netns || need+=(slirp4netns)
have fuse-overlayfs || need+=(fuse-overlayfs)
# netavark + aardvark-dns: container DNS names for the compose stack (make test-stack)
[ -x /usr/lib/podman/netavark ] || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
# iptables: netavark sets up every container network with it (a build's RUN steps included);
#   without it podman fails with "netavark: No such file or directory"
have iptables || need+=(iptables)
# catatonit: `init: true` of the API service (podman's container init)
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
have promtool || need+=(prometheus)
have chromium || need+=(chromium)
have chromedriver || need+=(chromium-driver)
have wrk || need+=(wrk)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-deps: not root, skipping ${need[*]} (the tests that need them skip)" >&2
  exit 0
fi
# Keep the packages from starting daemons (nginx on port 80, prometheus): tests start their own.
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
