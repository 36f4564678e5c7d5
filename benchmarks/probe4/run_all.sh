#!/bin/bash
# The fourth probe (issue 34): 96 cases written from the docs alone, each a
# small script ending on "VERDICT <id> <good|poor|silent|lost> <reason>".
# Builds cases/<id>.py = bodies/_pre.py + bodies/<id>.py into a temporary
# folder, runs them one at a time (about 5 minutes on 2 cores) and prints
# the VERDICT lines, then the count of each verdict.
#   benchmarks/probe4/run_all.sh            # the checkout's olor_mm
#   PY=/path/to/python benchmarks/probe4/run_all.sh
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
PY="${PY:-$root/.venv/bin/python}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for b in "$here"/bodies/P4-*.py; do
  id=$(basename "$b" .py)
  cat "$here/bodies/_pre.py" "$b" > "$work/$id.py"
done
for f in $(ls "$work"/P4-*.py | sort -V); do
  id=$(basename "$f" .py)
  (cd "$work" && timeout 300 "$PY" "$f" > "$work/$id.log" 2>&1)
  line=$(grep '^VERDICT ' "$work/$id.log" | tail -1)
  [ -z "$line" ] && line="VERDICT $id ERROR no verdict, see the script's output"
  echo "$line"
done | tee "$work/verdicts"
echo "---"
awk '{print $3}' "$work/verdicts" | sort | uniq -c
