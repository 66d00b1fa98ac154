#!/bin/sh
# nginx of the compose stack: renders deploy/nginx.conf for the container network, then runs
# nginx in the foreground. The lines of nginx.conf marked `# test: replicas` become the
# upstream servers of NGINX_UPSTREAM, a space-separated list of host:port (by default one
# service name, resolving to every API replica); the lines
# marked `# test: rewritten` that name host paths move under NGINX_RUN_DIR and the error log
# goes to stderr. Everything else (timeouts, retries, body limit) is the shipped config.
#   entrypoint.sh            render and run nginx
#   entrypoint.sh --check    render and test the configuration
#   entrypoint.sh --reload   render and reload the running nginx: new workers take the new
#                            upstreams (names resolved again), old ones finish their requests
#                            (deploy/rollout.sh drains a replica this way)
set -eu
template="${NGINX_TEMPLATE:-/etc/trajops/nginx.conf}"
run_dir="${NGINX_RUN_DIR:-/tmp/nginx}"
upstream="${NGINX_UPSTREAM:-api:8000}"
mkdir -p "$run_dir"
awk -v upstream="$upstream" -v run="$run_dir" '
  /# test: replicas/ {
    if (!done) {
      n = split(upstream, servers, " ")
      for (i = 1; i <= n; i++) printf "        server %s max_fails=1 fail_timeout=5s;\n", servers[i]
    }
    done = 1
    next
  }
  /# test: rewritten/ && $1 == "pid" { print "pid " run "/nginx.pid;"; next }
  /# test: rewritten/ && $1 == "error_log" { print "error_log /dev/stderr warn;"; next }
  /# test: rewritten/ && $1 == "client_body_temp_path" { print "    client_body_temp_path " run "/body;"; next }
  /# test: rewritten/ && $1 == "proxy_temp_path" { print "    proxy_temp_path " run "/proxy;"; next }
  { print }
  END { if (!done) { print "nginx.conf has no `# test: replicas` line" > "/dev/stderr"; exit 1 } }
' "$template" >"$run_dir/nginx.conf"
case "${1:-}" in
  --check) exec nginx -t -c "$run_dir/nginx.conf" -p "$run_dir" ;;
  --reload) exec nginx -s reload -c "$run_dir/nginx.conf" -p "$run_dir" ;;
esac
exec nginx -c "$run_dir/nginx.conf" -p "$run_dir" -g 'daemon off;'
