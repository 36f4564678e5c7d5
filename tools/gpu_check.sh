#!/usr/bin/env bash
# GPU check of olor-mm on a machine with CUDA, nvcc, PyTorch and no internet.
#
#   tools/gpu_check.sh [WHEEL_DIR]      (default: .whl)
#
# WHEEL_DIR holds what the machine lacks, for its Python: wheels of
# mmengine==0.10.7, mmdet==3.3.0, mmsegmentation==1.2.2, ftfy, regex, addict,
# yapf, termcolor, terminaltables, pycocotools, shapely, platformdirs,
# prettytable, setuptools<81, and the mmcv 2.1.0 source archive
# (mmcv-2.1.0.tar.gz). Fill it on a machine with internet, e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux_2_28_x86_64 -d .whl mmengine==0.10.7 ...
#   pip download --no-deps --no-binary=:all: --no-build-isolation \
#     -d .whl mmcv==2.1.0
#
# It installs them into $SITE (default /tmp/olor-site), builds mmcv's CUDA
# ops for the local GPU's architecture only (about 4 minutes on an H200),
# then runs, in order of priority, each writing its JSON into $OUT (default
# benchmarks/results) as soon as it is done:
#   1. MMDetection's own tools/train.py --amp rolls back
#      (benchmarks/upstream_amp_check.py)                      ~1 min
#   2. the optimizer step, stock MMEngine set-up vs olor-mm, fused kernels
#      (benchmarks/bench_step.py --device cuda)                ~1 min
#   3. every headline config at its upstream resolution and per-GPU batch
#      (1333x800 / 512x512 / 512x1024), olor-mm vs plain vs the stock
#      upstream config, fp32 and AMP (benchmarks/train_speed.py), until
#      $DEADLINE seconds after the start of each of its two calls (default
#      150): what did not fit is listed in its results.
# A second call skips what the first finished (train_speed resumes).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${1:-.whl}
SITE=${SITE:-/tmp/olor-site}
WORK=${WORK:-/tmp/olor-gpu}
OUT=${OUT:-benchmarks/results}
DEADLINE=${DEADLINE:-150}
PY=${PYTHON:-python3}
mkdir -p "$SITE" "$WORK" "$OUT"
export PYTHONPATH="$SITE:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

stamp() { echo "[$(date +%T)] $*"; }
stamp "GPU: $($PY -c 'import torch; print(torch.cuda.get_device_name(), torch.__version__, torch.version.cuda)')"

if ! $PY -c "import mmdet, mmseg" 2>/dev/null; then
  stamp "installing wheels from $WHEELS"
  $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
    "$WHEELS"/*.whl
fi
if ! $PY -c "import mmcv._ext" 2>/dev/null; then
  ARCH=$($PY -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
  stamp "building mmcv 2.1.0 with CUDA ops for sm_${ARCH/./} ($(nproc) jobs)"
  src=$(mktemp -d)
  tar xzf "$WHEELS"/mmcv-2.1.0.tar.gz -C "$src"
  (cd "$src/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=1 \
    TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS=$(nproc) \
    $PY setup.py build_ext --inplace > "$WORK/mmcv_build.log" 2>&1) || {
    tail -40 "$WORK/mmcv_build.log"; stamp "mmcv build FAILED"; exit 1; }
  cp -r "$src/mmcv-2.1.0/mmcv" "$SITE/"
  stamp "mmcv built"
fi
$PY -c "import mmcv._ext, mmcv, mmdet, mmseg; print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__)"
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name().split()[-1].lower())")

stamp "1. upstream tools/train.py --amp"
[ -f "$OUT/gpu_upstream_amp_$GPU.json" ] || \
  $PY benchmarks/upstream_amp_check.py --work-dir "$WORK/upstream_amp" \
    --out "$OUT/gpu_upstream_amp_$GPU.json" > "$WORK/upstream_amp.log" 2>&1 \
  || { tail -30 "$WORK/upstream_amp.log"; stamp "upstream --amp check FAILED"; }

stamp "2. optimizer step benchmark"
[ -f "$OUT/bench_step_gpu.json" ] || \
  $PY benchmarks/bench_step.py --device cuda --out "$OUT" \
    > "$WORK/bench_step.log" 2>&1 || { tail -30 "$WORK/bench_step.log"; }

stamp "3. headline configs at full size (deadline ${DEADLINE} s)"
$PY benchmarks/train_speed.py \
  configs/mmdet/mask-rcnn_r50_fpn_olor_1x_coco.py \
  configs/mmseg/upernet_r50_olor_4xb4-80k_ade20k-512x512.py \
  --variants olor stock plain --modes fp32 amp --iters 20 --warmup 5 \
  --workers 4 --work-dir "$WORK/speed" --deadline "$DEADLINE" \
  --out "$OUT/train_speed_$GPU.json"
$PY benchmarks/train_speed.py configs/mmdet/*.py configs/mmseg/*.py \
  --variants olor --modes fp32 amp --iters 20 --warmup 5 --workers 4 \
  --work-dir "$WORK/speed" --deadline "$DEADLINE" \
  --out "$OUT/train_speed_$GPU.json"
stamp done
