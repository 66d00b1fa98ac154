#!/usr/bin/env bash
# Overload probe of the prediction/audit log writer: `trajops serve` (1 worker, auth on) under
# wrk with one cached body, then the log writer's metrics (spooled rows, back-pressure waits).
# Usage: bench/serve_overload.sh [CONNECTIONS] [SECONDS]   (defaults 16 and 10)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-16}
SECS=${2:-10}
PORT=8931
T=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$T"' EXIT
export TRAJOPS_HOME=$T/home
URI=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'bench'); from pathlib import Path; from serve import build_registry; print(build_registry(Path('$T')))" 2>/dev/null | tail -1)
export TRAJOPS_TRACKING_URI=$URI TRAJOPS_RATE_LIMIT_PER_S=1000000000 TRAJOPS_RATE_LIMIT_BURST=1000000000
KEY=$(.venv/bin/trajops keys create --name overload --scopes predict,admin | tail -1)
.venv/bin/trajops serve --port $PORT > "$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 120); do curl -sf localhost:$PORT/readyz > /dev/null && break; sleep 0.5; done
cat > "$T/s.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "$KEY"
local body = '{"agents":[{"agent_id":"a","positions":[[0,0],[0.5,0],[1,0],[1.5,0],[2,0],[2.5,0],[3,0],[3.5,0]]}]}'
function request() return wrk.format(nil, "/v1/predict", nil, body) end
LUA
wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -s "$T/s.lua" "http://127.0.0.1:$PORT" | grep -E "Requests/sec|50%|99%"
curl -s -H "X-API-Key: $KEY" localhost:$PORT/metrics | grep -E "^trajops_log_(rows|backpressure)[a-z_]*_total "
