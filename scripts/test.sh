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
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v cc >/dev/null || missing+=(gcc libc6-dev)

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

exec cargo test --locked "$@"
