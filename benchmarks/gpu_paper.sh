#!/usr/bin/env bash
# The GPU run in one command (see benchmarks/gpu_paper.py): every data-free paper preset run,
# recorded and timed against the CPU, within a 10-minute slot.
#   benchmarks/gpu_paper.sh "$OUT"            # everything, packed into $OUT/gpu_paper.tgz
#   benchmarks/gpu_paper.sh "$OUT" --dry-run  # the plan only
# On a machine without this project's environment (no .venv) the Python on PATH is used; what
# benchmarks/gpu_prepare.sh gathered in .gpu/ is set up first: its wheels installed for that
# Python (in /tmp/gpu-site), and git unpacked (in /tmp/gpu-git) if the machine has none. The
# work is done in /tmp/gpu-paper; $OUT receives three files: the archive of the whole run
# (tables, logs, run folders, records; `gpu_paper.py --unpack` takes it back), the table and the
# log.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu-paper}}"
shift || true
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
if compgen -G ".gpu/wheels/*.whl" > /dev/null; then
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu-site .gpu/wheels/*.whl \
        || { echo "could not install the wheels of .gpu/wheels" >&2; exit 2; }
    export PYTHONPATH="/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! command -v git > /dev/null && compgen -G ".gpu/debs/git_*.deb" > /dev/null; then
    # a .deb is an ar archive around data.tar.*: unpacked with Python alone (no dpkg needed)
    "$python" - .gpu/debs/git_*.deb /tmp/gpu-git <<'PY' || { echo "could not unpack git" >&2; exit 2; }
import io, sys, tarfile
blob = open(sys.argv[1], "rb").read()
assert blob[:8] == b"!<arch>\n", "not a Debian package"
pos = 8
while pos < len(blob):
    name, size = blob[pos:pos + 16].decode().strip(), int(blob[pos + 48:pos + 58])
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(blob[pos + 60:pos + 60 + size])).extractall(
            sys.argv[2], filter="tar")
        break
    pos += 60 + size + size % 2
PY
    export PATH="/tmp/gpu-git/usr/bin:$PATH" GIT_EXEC_PATH=/tmp/gpu-git/usr/lib/git-core
fi
# the sources themselves, for a Python where the package is not installed
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# a copied tree may belong to another user than the one running here, with other file modes:
# git must still read its commit, and see it clean (set for this run only, no config written)
export GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0="$PWD" \
    GIT_CONFIG_KEY_1=core.fileMode GIT_CONFIG_VALUE_1=false
mkdir -p "$out"
"$python" benchmarks/gpu_paper.py --out /tmp/gpu-paper --pack "$out/gpu_paper.tgz" "$@"
rc=$?
for f in /tmp/gpu-paper/gpu_paper.md /tmp/gpu-paper/logs/gpu_paper.log; do
    [ -f "$f" ] && cp "$f" "$out/"
done
exit $rc
