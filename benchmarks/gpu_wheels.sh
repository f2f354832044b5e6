#!/usr/bin/env bash
# Wheels for a GPU machine that reaches no package registry, whose Python already has PyTorch
# and the scientific stack (benchmarks/gpu_image.txt): every package of
# benchmarks/gpu_requirements.txt, downloaded here for that machine's Python, into .whl/
# (ignored by git). Carry the folder with the tree; benchmarks/gpu_paper.sh installs it there.
#   benchmarks/gpu_wheels.sh                 # Python 3.12, x86-64 Linux, into .whl
#   GPU_PYTHON=3.11 benchmarks/gpu_wheels.sh /tmp/wheels
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.whl}"
version="${GPU_PYTHON:-3.12}"
platforms=()
for tag in manylinux1 manylinux2014 manylinux_2_17 manylinux_2_24 manylinux_2_26 manylinux_2_27 \
           manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35; do
    platforms+=(--platform "${tag}_x86_64")
done
"${PYTHON:-.venv/bin/python}" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "$version" --implementation cp "${platforms[@]}" \
    --dest "$dest" -r benchmarks/gpu_requirements.txt
echo "$(ls "$dest"/*.whl | wc -l) wheels, $(du -sh "$dest" | cut -f1), in $dest"
