#!/usr/bin/env bash
# Side-by-side load-generator benchmark on loopback (see benches/README.md).
#
#   benches/peers.sh raw        infercheck vs wrk, hey, oha: raw HTTP, small responses
#   benches/peers.sh memory     infercheck max RSS at a fixed rate, 1 min vs 5 min
#   benches/peers.sh streaming  infercheck's sustained streaming rate against the simulator
#   benches/peers.sh accuracy   120 req/s for 60 s against a simulator set to answer in 145 ms
#   benches/peers.sh soak       SOAK_MINUTES (30) at SOAK_RATE (50) req/s streaming against the
#                               simulator: RSS, open fds, threads and runtime tasks every minute
#   benches/peers.sh all        everything above but soak
#
# Needs: wrk, hey, nginx (apt-get install -y wrk hey nginx-light), oha (cargo
# install oha). Every target is 127.0.0.1 on a free port; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-raw}
CONNECTIONS=${CONNECTIONS:-50}
SECONDS_PER_TOOL=${SECONDS_PER_TOOL:-10}
WORK=$(mktemp -d)
BIN=target/release/infercheck
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_port() {
  for _ in $(seq 1 100); do
    (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2; return 1
}

start_nginx() {
  NGINX_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { return 200 'ok'; }
  }
}
CONF
  nginx -c "$WORK/nginx/nginx.conf" -g 'daemon off;' &
  wait_port "$NGINX_PORT"
}

infercheck_plan() { # $1 = load table, $2 = duration
  cat > "$WORK/plan.toml" <<PLAN
name = "bench"
[target]
api = "template"
stream = false
timeout = "10s"
max_in_flight = 4096
[target.template]
method = "GET"
path = "/"
[[phases]]
name = "bench"
duration = "$2"
load = $1
PLAN
}

report_value() { # $1 = report.json, $2 = python expression over r
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"
}

serve_sim() { # $1 = port, then serve-sim options beyond "no slowdown, no prefill cost"
  local port=$1; shift
  "$BIN" serve-sim --listen "127.0.0.1:$port" --slowdown 0 --prefill-per-token 0s "$@" 2>/dev/null &
  wait_port "$port"
}

last_report() { ls -td "$WORK"/results/*/ | head -1; }

raw() {
  start_nginx
  local url="http://127.0.0.1:$NGINX_PORT/"
  echo "== raw HTTP, $CONNECTIONS connections, ${SECONDS_PER_TOOL}s each, target nginx (1 worker) on loopback"
  printf '%-12s %12s\n' tool "req/s"
  local wrk_rps hey_rps oha_rps ic_rps
  wrk_rps=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_TOOL}s" "$url" | awk '/Requests\/sec/ {print $2}')
  printf '%-12s %12.0f\n' wrk "$wrk_rps"
  hey_rps=$(hey -c "$CONNECTIONS" -z "${SECONDS_PER_TOOL}s" "$url" | awk '/Requests\/sec/ {print $2}')
  printf '%-12s %12.0f\n' hey "$hey_rps"
  if command -v oha >/dev/null; then
    oha_rps=$(oha --no-tui -c "$CONNECTIONS" -z "${SECONDS_PER_TOOL}s" --output-format json "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["requestsPerSec"])')
    printf '%-12s %12.0f\n' oha "$oha_rps"
  else
    oha_rps=0; echo "oha          (not installed: cargo install oha)"
  fi
  infercheck_plan "{ type = \"concurrency\", concurrency = $CONNECTIONS }" "${SECONDS_PER_TOOL}s"
  "$BIN" run "$WORK/plan.toml" --target "http://127.0.0.1:$NGINX_PORT" --out "$WORK/results" --quiet > /dev/null || true
  ic_rps=$(report_value "$(last_report)/report.json" 'r["overall"]["rps"]')
  printf '%-12s %12.0f\n' infercheck "$ic_rps"
  python3 -c "import sys; w,o,i=map(float,sys.argv[1:]); print(f'infercheck/wrk = {i/w:.2f}' + (f', infercheck/oha = {i/o:.2f}' if o else ''))" "$wrk_rps" "$oha_rps" "$ic_rps"
}

memory() {
  start_nginx
  local rate=${RATE:-2000}
  echo "== memory: constant $rate req/s against nginx, max RSS"
  for duration in 1m 5m; do
    infercheck_plan "{ type = \"constant\", rate = $rate }" "$duration"
    /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" run "$WORK/plan.toml" --target "http://127.0.0.1:$NGINX_PORT" --out "$WORK/results" --quiet > /dev/null || true
    printf '%-4s max RSS %8d KiB, requests %s\n' "$duration" "$(cat "$WORK/rss")" "$(report_value "$(last_report)/report.json" 'r["overall"]["requests"]')"
  done
}

streaming() {
  local port; port=$(free_port)
  serve_sim "$port" --ttft 20ms --per-token 5ms --max-num-seqs 4096 --kv-blocks 65536
  echo "== streaming: closed sweep against serve-sim (ttft 20ms, 5ms/token, 64 tokens, no slowdown, KV cache large enough for 4096 streams)"
  cat > "$WORK/plan.toml" <<PLAN
name = "bench-streaming"
[target]
stream = true
timeout = "30s"
[workload]
max_tokens = 64
[[phases]]
name = "sweep"
load = { type = "sweep", levels = [100, 250, 500, 1000], step_duration = "10s" }
PLAN
  "$BIN" run "$WORK/plan.toml" --target "http://127.0.0.1:$port" --out "$WORK/results" --quiet > /dev/null || true
  python3 - "$(last_report)/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for step in r["phases"][0]["steps"]:
    s = step["stats"]
    print(f"c={step['concurrency']:>5}  {s['rps']:8.1f} req/s  {s['output_tokens_per_s']:9.0f} tok/s  "
          f"ttft p95 {s['distributions']['ttft_ms']['p95']:7.1f}ms  itl p95 {s['distributions']['itl_ms']['p95']:6.1f}ms  errors {sum(s['errors'].values())}")
g = r["generator"]
print(f"generator: valid={g['valid']} cpu avg {g['cpu_cores_avg']:.2f} max {g['cpu_cores_max']:.2f} of {g['cores_available']} cores")
PY
}

accuracy() {
  local port; port=$(free_port)
  serve_sim "$port" --ttft 50ms --per-token 5ms
  echo "== accuracy: constant 120 req/s for 60 s; the simulator answers 20 tokens in 50ms + 19×5ms = 145ms"
  cat > "$WORK/plan.toml" <<PLAN
name = "bench-accuracy"
[target]
stream = false
[workload]
max_tokens = 20
[[phases]]
name = "steady"
duration = "60s"
load = { type = "constant", rate = 120 }
PLAN
  "$BIN" run "$WORK/plan.toml" --target "http://127.0.0.1:$port" --out "$WORK/results" --quiet > /dev/null || true
  python3 - "$(last_report)/report.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["phases"][0]["stats"]
lat, lag = s["distributions"]["latency_ms"], s["distributions"]["schedule_lag_ms"]
print(f"requests {s['requests']}, achieved {s['rps']:.2f} req/s (target 120, {abs(s['rps'] - 120) / 1.2:.2f}% off)")
print(f"schedule lag p99 {lag['p99']:.2f}ms; latency p50 {lat['p50']:.1f}ms p99 {lat['p99']:.1f}ms "
      f"(expected 145ms: {100 * (lat['p50'] - 145) / 145:+.1f}% / {100 * (lat['p99'] - 145) / 145:+.1f}%); errors {sum(s['errors'].values())}")
PY
}

soak() {
  local minutes=${SOAK_MINUTES:-30} rate=${SOAK_RATE:-50}
  local port metrics; port=$(free_port); metrics=$(free_port)
  serve_sim "$port" --ttft 20ms --per-token 5ms
  echo "== soak: constant $rate req/s, streaming 32 tokens, ${minutes} min against serve-sim; one row a minute"
  cat > "$WORK/plan.toml" <<PLAN
name = "bench-soak"
[target]
stream = true
timeout = "30s"
[workload]
max_tokens = 32
[observe]
metrics_listen = "127.0.0.1:$metrics"
[[phases]]
name = "soak"
duration = "${minutes}m"
load = { type = "constant", rate = $rate }
PLAN
  "$BIN" run "$WORK/plan.toml" --target "http://127.0.0.1:$port" --out "$WORK/results" --quiet > /dev/null &
  local pid=$!
  wait_port "$metrics"
  printf '%-6s %10s %6s %8s %12s %10s %8s\n' minute "RSS KiB" fds threads "alive tasks" requests "in flight"
  for minute in $(seq 0 "$minutes"); do
    [ "$minute" -gt 0 ] && sleep 60
    kill -0 "$pid" 2>/dev/null || break
    local scrape; scrape=$(curl -s "http://127.0.0.1:$metrics/metrics" || true)
    printf '%-6s %10s %6s %8s %12s %10s %8s\n' "$minute" \
      "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" \
      "$(ls "/proc/$pid/fd" | wc -l)" \
      "$(ls "/proc/$pid/task" | wc -l)" \
      "$(awk '/^infercheck_runtime_alive_tasks / {print $2}' <<< "$scrape")" \
      "$(awk '/^infercheck_requests_total/ {n += $2} END {print n + 0}' <<< "$scrape")" \
      "$(awk '/^infercheck_in_flight / {print $2}' <<< "$scrape")"
  done
  wait "$pid" || true
  report_value "$(last_report)/report.json" '"requests %d, errors %d, achieved %.2f req/s, schedule lag p99 %.2fms, generator valid %s" % (r["phases"][0]["stats"]["requests"], sum(r["phases"][0]["stats"]["errors"].values()), r["phases"][0]["stats"]["rps"], r["phases"][0]["stats"]["distributions"]["schedule_lag_ms"]["p99"], r["generator"]["valid"])'
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(date -u +%Y-%m-%d)"
case "$MODE" in
  raw) raw ;;
  memory) memory ;;
  streaming) streaming ;;
  accuracy) accuracy ;;
  soak) soak ;;
  all) raw; memory; streaming; accuracy ;;
  *) echo "usage: $0 raw|memory|streaming|accuracy|soak|all" >&2; exit 1 ;;
esac
