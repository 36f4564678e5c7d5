#!/usr/bin/env bash
# Compatibility matrix: olor-mm installed as users install it, into an
# environment that already holds an older supported OpenMMLab stack.
#
#   .ci/matrix.sh [MMENGINE [MMDET]]     (default 0.10.4 3.2.0)
#
# 1. a fresh venv with torch 2.13.0 (CPU), mmcv 2.1.0 (the wheel cache, or
#    a source build with its ops), mmengine MMENGINE and mmdet MMDET;
# 2. olor-mm built as a wheel and installed with `pip install WHEEL[mmdet]`:
#    nothing of the stack may be reinstalled, upgraded or rebuilt, and
#    mmsegmentation must not come in;
# 3. the core tests run against the installed package (not the checkout),
#    then again with MMEngine's floor, mmengine 0.8.5 (minus the two checks
#    of exact resume, which MMEngine < 0.10.3 breaks with or without OLOR).
set -euo pipefail
cd "$(dirname "$0")/.."
MMENGINE=${1:-0.10.4}
MMDET=${2:-3.2.0}
VENV=${MATRIX_VENV:-.venv-matrix}
PY=$VENV/bin/python
PIPI="$PY -m pip install -q -c requirements/constraints-build.txt"
CORE=(tests/core/test_attach.py tests/engine/test_optim_wrappers.py
      tests/engine/test_optim_wrappers_parity.py tests/core/test_rollback.py
      tests/engine/test_runner.py tests/engine/test_amp.py tests/core/test_penalty.py
      tests/core/test_fisher.py tests/core/test_importance.py
      tests/cli/test_common.py tests/test_version.py tests/compat/test_compat.py)

rm -rf "$VENV" dist
python3 -m venv "$VENV"
export MMCV_WITH_OPS=1
$PIPI -r requirements/build.txt
$PIPI torch==2.13.0
$PIPI --no-build-isolation mmcv==2.1.0 "mmengine==$MMENGINE" "mmdet==$MMDET" \
  pytest
$PY -c "import mmcv._ext"
$PY -m pip freeze | sort > "$VENV/before.txt"

# the wheel, built the way `pip install .` builds it
$PY -m pip wheel -q --no-deps --no-build-isolation . -w dist
wheel=$(ls dist/olor_mm-*.whl)
$PY -m pip install "${wheel}[mmdet]" > "$VENV/install.log" 2>&1
if grep -Ei "building wheel for|uninstalling|attempting uninstall" \
    "$VENV/install.log"; then
  echo "matrix: installing olor-mm rebuilt or replaced part of the stack"
  exit 1
fi
$PY -m pip freeze | sort > "$VENV/after.txt"
# nothing that was there may change; what comes in must be one of
# olor-mm's own runtime requirements (requirements/runtime.txt: tabulate)
changed=$($PY - "$VENV/before.txt" "$VENV/after.txt" requirements/runtime.txt <<'PY'
import re, sys
def pins(path):  # name -> version (or the whole line: pkg @ url)
    lines = [l.strip() for l in open(path) if l.strip()]
    return dict(l.split('==', 1) if '==' in l else (l.split(' @ ')[0], l)
                for l in lines if not l.startswith('#'))
def name(n):
    return re.sub(r'[-_.]+', '-', n).lower()
before, after = pins(sys.argv[1]), pins(sys.argv[2])
own = {name(re.split(r'[<>=!~;\[ ]', l.strip())[0]) for l in open(sys.argv[3])
       if l.strip() and not l.startswith('#')}
before = {name(k): v for k, v in before.items()}
for k, v in sorted(after.items()):
    if name(k) == 'olor-mm':
        continue
    if name(k) in before and before[name(k)] != v:
        print(f'{k}: {before[name(k)]} -> {v}')
    elif name(k) not in before and name(k) not in own:
        print(f'{k}=={v} (new, not an olor-mm requirement)')
for k in sorted(set(before) - {name(k) for k in after}):
    print(f'{k}: removed')
PY
)
if [ -n "$changed" ]; then
  echo "matrix: installing olor-mm changed the environment:"; echo "$changed"
  exit 1
fi
if $PY -c "import mmseg" 2>/dev/null; then
  echo "matrix: the mmdet extra brought mmsegmentation"; exit 1
fi
echo "matrix: olor-mm installed into torch $($PY -c 'import torch; print(torch.__version__)'), mmengine $MMENGINE, mmdet $MMDET, mmcv 2.1.0; nothing of it changed"

# the tests must import the installed package, not the checkout
export OLOR_MM_EXPECT_INSTALLED=1
$VENV/bin/pytest -q "${CORE[@]}"
$PIPI --no-deps mmengine==0.8.5
$VENV/bin/pytest -q -m "not exact_resume" "${CORE[@]}"
echo "matrix: core tests passed on mmengine $MMENGINE and 0.8.5"
