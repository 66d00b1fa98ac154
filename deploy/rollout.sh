#!/usr/bin/env bash
# Zero-downtime rollout of the compose stack's API replicas to a new image, one replica at a
# time, with podman alone (no trajops, no compose on the path):
#
#   deploy/rollout.sh IMAGE [--project trajops] [--service api] [--ready-timeout 240]
#
# For each running replica OLD of the service (oldest name first):
#   1. start NEXT, a clone of OLD on IMAGE (`podman container clone`: the same environment,
#      volumes, network and aliases, resource limits and labels), and wait until NEXT answers
#      /readyz (a model loaded);
#   2. drain OLD: nginx is re-rendered with an explicit upstream list (addresses) that holds
#      NEXT and the other replicas but not OLD, and reloaded (deploy/nginx/entrypoint.sh --reload): new
#      workers send nothing to OLD while the old workers finish their requests;
#   3. stop OLD (SIGTERM: uvicorn finishes what is in flight, the log writer flushes), remove
#      it, and give NEXT the name of OLD, so compose (`down`, `logs`) finds it.
# At the end nginx goes back to the service name (every replica, all on IMAGE now). A replica
# that does not become ready stops the rollout with the old replica still serving, NEXT left
# for inspection and nginx unchanged. Exit 0 when every replica runs IMAGE.
set -euo pipefail

usage() { sed -n '2,20p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
image="$1"; shift
project=trajops
service=api
ready_timeout=240
port=8000
while [ $# -gt 0 ]; do
  case "$1" in
    --project) project="$2"; shift 2 ;;
    --service) service="$2"; shift 2 ;;
    --ready-timeout) ready_timeout="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "rollout: unknown argument $1" >&2; usage ;;
  esac
done

say() { printf '[rollout %4ss] %s\n' "$SECONDS" "$*"; }
containers() {  # running containers of compose service $1, by name
  podman ps --filter "label=io.podman.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | sort
}

podman image exists "$image" || { echo "rollout: no image $image here (build it first)" >&2; exit 2; }
mapfile -t replicas < <(containers "$service")
nginx=$(containers nginx | head -n1)
if [ ${#replicas[@]} -eq 0 ] || [ -z "$nginx" ]; then
  echo "rollout: project $project has no running '$service' replicas or no nginx" >&2
  exit 2
fi
say "rolling ${replicas[*]} to $image through $nginx"

wait_ready() {
  local deadline=$((SECONDS + ready_timeout))
  until podman exec "$1" python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/readyz', timeout=4)" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ] || [ "$(podman inspect --format '{{.State.Running}}' "$1")" != true ]; then
      echo "rollout: $1 not ready after ${ready_timeout}s; the old replica keeps serving" >&2
      podman logs --tail 30 "$1" >&2 || true
      return 1
    fi
    sleep 1
  done
}

# A replica's address on the stack's network. nginx gets addresses, not names: a renamed
# container keeps its old DNS name until it reconnects.
address() {
  podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$1" |
    awk '{print $1}'
}

upstreams() {  # render nginx with these upstream servers and reload it
  podman exec -e "NGINX_UPSTREAM=$*" "$nginx" sh /etc/trajops/nginx-entrypoint.sh --reload
}

for old in "${replicas[@]}"; do
  next="$old-next"
  podman rm --force --ignore "$next" >/dev/null
  podman container clone "$old" "$next" "$image" >/dev/null
  podman start "$next" >/dev/null
  say "$next started on $image; waiting for /readyz"
  wait_ready "$next"
  servers=("$(address "$next"):$port")
  for other in $(containers "$service"); do
    [ "$other" = "$old" ] || [ "$other" = "$next" ] || servers+=("$(address "$other"):$port")
  done
  upstreams "${servers[@]}"
  say "nginx drains $old (upstreams: ${servers[*]})"
  sleep 2  # the old workers' requests to $old finish (proxy_read_timeout bounds the worst)
  podman stop --time 30 "$old" >/dev/null
  podman rm "$old" >/dev/null
  podman rename "$next" "$old"
  say "$old replaced"
done
upstreams "$service:$port"
say "done: every $service replica runs $image; nginx upstream $service:$port"
