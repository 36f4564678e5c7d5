#!/usr/bin/env bash
# MMEngine's own tests with and without olor-mm imported (issue 32):
#   bash benchmarks/mmengine_suite.sh MMENGINE_CHECKOUT [PYTHON]
# MMENGINE_CHECKOUT: MMEngine's repository at the installed tag, e.g.
#   git clone -b v0.10.7 https://github.com/open-mmlab/mmengine /tmp/mmengine
# PYTHON: the interpreter of the stack (default .venv/bin/python). MMEngine's
# tests need `parameterized`, installed here into MMENGINE_CHECKOUT/.deps.
# Runs the runner, checkpoint, optimizer-wrapper (OptimWrapperDict included),
# checkpoint-hook and EMA-hook tests twice, the second time with a conftest
# that imports olor_mm (what a config's custom_imports does), and prints each
# run's counts and every test whose outcome differs (none is the guarantee).
set -euo pipefail
repo=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
python=${2:-$here/.venv/bin/python}
out=$(mktemp -d)
"$python" -m pip install -q --target "$repo/.deps" parameterized
files="tests/test_runner/test_runner.py tests/test_runner/test_checkpoint.py
  tests/test_optim/test_optimizer/test_optimizer_wrapper.py
  tests/test_optim/test_optimizer/test_optimizer_wrapper_dict.py
  tests/test_hooks/test_checkpoint_hook.py tests/test_hooks/test_ema_hook.py"
conftest="$repo/tests/conftest.py"
test ! -e "$conftest" || { echo "$conftest exists: remove it first"; exit 1; }
trap 'rm -f "$conftest"' EXIT
run() {  # run NAME: outcome per test id into $out/NAME
  (cd "$repo" && PYTHONPATH="$repo/.deps:$here" "$python" -m pytest -q \
    -p no:cacheprovider -rA $files > "$out/$1.log" 2>&1) || true
  grep -E '^(PASSED|FAILED|ERROR|SKIPPED)' "$out/$1.log" \
    | sed 's/ - .*//' | sort > "$out/$1"
  echo "$1: $(tail -n 1 "$out/$1.log")"
}
run without
echo 'import olor_mm  # noqa: F401  (benchmarks/mmengine_suite.sh)' > "$conftest"
run with
if diff "$out/without" "$out/with"; then
  echo "every test has the same outcome with olor-mm imported"
else
  echo "outcomes differ (above: < without, > with)"; exit 1
fi
