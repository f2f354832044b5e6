#!/usr/bin/env bash
# What a GPU machine that reaches no package index needs, gathered here into .gpu/ (ignored by
# git), to carry there with the tree and its .git; benchmarks/gpu_paper.sh uses it there:
#   .gpu/wheels/  every package of benchmarks/gpu_requirements.txt, as wheels for that machine's
#                 Python (its image already has PyTorch and the scientific stack:
#                 benchmarks/gpu_image.txt);
#   .gpu/debs/    Debian's git, unpacked there only if the machine has no git (a record names
#                 the commit it was made from, read with git).
#   benchmarks/gpu_prepare.sh                  # Python 3.12, x86-64 Linux, into .gpu
#   GPU_PYTHON=3.11 benchmarks/gpu_prepare.sh /tmp/gpu
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.gpu}"
version="${GPU_PYTHON:-3.12}"
mkdir -p "$dest/wheels" "$dest/debs"
platforms=()
for tag in manylinux1 manylinux2014 manylinux_2_17 manylinux_2_24 manylinux_2_26 manylinux_2_27 \
           manylinux_2_28 manylinux_2_31 manylinux_2_34 manylinux_2_35; do
    platforms+=(--platform "${tag}_x86_64")
done
"${PYTHON:-.venv/bin/python}" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "$version" --implementation cp "${platforms[@]}" \
    --dest "$dest/wheels" -r benchmarks/gpu_requirements.txt
command -v apt-get > /dev/null || { echo "apt-get not found: cannot fetch git's package" >&2; exit 2; }
# git's own binary needs only libc, zlib and pcre2; its declared dependencies (perl, curl) serve
# commands the run does not use
(cd "$dest/debs" && apt-get download git 2> /dev/null) \
    || { echo "could not download Debian's git package (run 'apt-get update' first)" >&2; exit 2; }
echo "$(ls "$dest"/wheels/*.whl | wc -l) wheels and $(ls "$dest"/debs/*.deb | wc -l) package(s), $(du -sh "$dest" | cut -f1), in $dest"
