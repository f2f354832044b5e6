#!/usr/bin/env bash
# The GPU run in one command (see benchmarks/gpu_paper.py): every data-free paper preset run,
# recorded and timed against the CPU, within a 10-minute slot.
#   benchmarks/gpu_paper.sh "$OUT"            # everything, packed into $OUT/gpu_paper.tgz
#   benchmarks/gpu_paper.sh "$OUT" --dry-run  # the plan only
# On a machine without this project's environment (no .venv): the Python on PATH is used, and
# the wheels of .whl/ (benchmarks/gpu_wheels.sh), if there, are installed for it first, in
# /tmp/gpu-site. The work is done in /tmp/gpu-paper; $OUT receives three files: the archive of
# the whole run (tables, logs, run folders, records: `gpu_paper.py --unpack` takes it here), the
# table and the log.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu-paper}}"
shift || true
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
if [ -d .whl ] && compgen -G ".whl/*.whl" > /dev/null; then
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu-site .whl/*.whl || { echo "could not install the wheels of .whl" >&2; exit 2; }
    export PYTHONPATH="/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
# the sources themselves, for a Python where the package is not installed
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# a copied tree keeps its commit only if git does not see the copy's file modes as changes
[ -d .git ] && git config core.fileMode false
mkdir -p "$out"
"$python" benchmarks/gpu_paper.py --out /tmp/gpu-paper --pack "$out/gpu_paper.tgz" "$@"
rc=$?
for f in /tmp/gpu-paper/gpu_paper.md /tmp/gpu-paper/logs/gpu_paper.log; do
    [ -f "$f" ] && cp "$f" "$out/"
done
exit $rc
