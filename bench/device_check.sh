#!/usr/bin/env bash
# The GPU check of issues 15 and 25 in one command (about 9 minutes on an H100/H200, the wheels' install
# included): install the carried wheels, run the CUDA tests (tests/inference/test_cuda.py,
# tests/training/test_graph_step.py), the engine bench with a DENETHOR tile-year projection, the device
# targets (compiled vs eager backbone, host- vs device-fed engine, CUDA-graph vs eager pretraining step),
# the pretraining bench and the --scheduler scale-out at 1/4/8 workers, and write one markdown table to
# $OUT/device_check.md (bench/device_check.py).
#
#   bench/device_check.sh                  # on the GPU machine: wheels from .whl/, python3 of the image
#   bench/device_check.sh --device cpu     # dry run here: .venv's python, tiny sizes, CUDA tests skip
#   bench/device_check.sh --fetch-wheels   # here, once: download bench/device_wheels.txt into .whl/
#
# Extra arguments go to bench/device_check.py (--smoke, --skip-tests, --skip-bench). .whl/ must be
# git-ignored (echo /.whl/ >> .git/info/exclude) and named in the device call's carry.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

device=cuda
fetch=0
rest=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --device) device="$2"; shift 2 ;;
        --device=*) device="${1#*=}"; shift ;;
        --fetch-wheels) fetch=1; shift ;;
        *) rest+=("$1"); shift ;;
    esac
done

if [[ $fetch == 1 ]]; then
    py=${PYTHON:-.venv/bin/python}
    exec "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d .whl -r bench/device_wheels.txt
fi

OUT=${OUT:-$(mktemp -d /tmp/geocrop-device-check.XXXXXX)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [[ $device == cuda ]]; then
    py=${PYTHON:-python3}
    ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: run bench/device_check.sh --fetch-wheels here and carry .whl" >&2; exit 2; }
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 3
    export PYTHONPATH="/tmp/site:$PWD"
else
    py=${PYTHON:-.venv/bin/python}
    [[ -x $py ]] || py=python3
    export PYTHONPATH="$PWD"
fi
exec "$py" bench/device_check.py --device "$device" --out "$OUT" ${rest[@]+"${rest[@]}"}
