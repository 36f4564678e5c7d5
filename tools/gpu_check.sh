#!/usr/bin/env bash
# GPU check of olor-mm on a machine with CUDA, nvcc, PyTorch and no internet.
#
#   tools/gpu_check.sh [WHEEL_DIR]      (default: .whl)
#
# WHEEL_DIR holds what the machine lacks, for its Python: wheels of
# mmengine==0.10.7, mmdet==3.3.0, addict, yapf, termcolor, terminaltables,
# pycocotools, shapely, platformdirs, setuptools<81, and the mmcv 2.1.0 source
# archive (mmcv-2.1.0.tar.gz). Fill it on a machine with internet, e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux_2_28_x86_64 -d .whl mmengine==0.10.7 ...
#   pip download --no-deps --no-binary=:all: --no-build-isolation \
#     -d .whl mmcv==2.1.0
#
# It installs them into $SITE (default /tmp/olor-site), builds mmcv's CUDA
# ops for the local GPU's architecture only, pre-trains the demo Mask R-CNN
# briefly, then trains the OLOR fine-tuning config for ITERS iterations
# (default 300) in fp32 and with --amp, and prints iterations per second and
# the rollback's share of the iteration time (rollback_overhead.py). With
# $OUT set, the JSON figures and logs are copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${1:-.whl}
SITE=${SITE:-/tmp/olor-site}
ITERS=${ITERS:-300}
WORK=${WORK:-/tmp/olor-gpu}
PY=${PYTHON:-python3}
mkdir -p "$SITE" "$WORK"
export PYTHONPATH="$SITE:$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

stamp() { echo "[$(date +%T)] $*"; }
stamp "GPU: $($PY -c 'import torch; print(torch.cuda.get_device_name(), torch.__version__, torch.version.cuda)')"

stamp "installing wheels from $WHEELS"
$PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" \
  "$WHEELS"/*.whl

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
$PY -c "import mmcv._ext, mmcv, mmdet; print('mmcv', mmcv.__version__, 'mmdet', mmdet.__version__)"

stamp "data and a short pre-training"
$PY tools/make_demo_data.py --out "$WORK/data" > /dev/null
DATA=(
  "train_dataloader.dataset.data_root=$WORK/data/upstream/"
  "val_dataloader.dataset.data_root=$WORK/data/upstream/"
  "val_evaluator.ann_file=$WORK/data/upstream/instances_val.json")
$PY tools/train.py configs/demo/mask-rcnn_r18-tiny_demo-upstream.py \
  --work-dir "$WORK/upstream" --cfg-options train_cfg.max_iters=200 \
  train_cfg.val_interval=1000 default_hooks.checkpoint.interval=200 \
  "${DATA[@]}" > "$WORK/upstream.log" 2>&1
DOWN=(
  "train_dataloader.dataset.data_root=$WORK/data/downstream/"
  "load_from=$WORK/upstream/iter_200.pth")
CFG=configs/demo/mask-rcnn_r18-tiny_demo-downstream_olor.py
for mode in fp32 amp; do
  stamp "OLOR fine-tuning, $mode, $ITERS iterations"
  flag=(); [ "$mode" = amp ] && flag=(--amp)
  $PY tools/analysis_tools/rollback_overhead.py "$CFG" --iters "$ITERS" \
    "${flag[@]}" --work-dir "$WORK/ft_$mode" --json "$WORK/gpu_$mode.json" \
    --cfg-options "${DOWN[@]}" > "$WORK/ft_$mode.log" 2>&1 || {
      tail -30 "$WORK/ft_$mode.log"; exit 1; }
  cat "$WORK/gpu_$mode.json"
done
if [ -n "${OUT:-}" ]; then
  cp "$WORK"/gpu_*.json "$OUT"/
  tail -c 100000 "$WORK/ft_amp.log" > "$OUT/ft_amp.log"
fi
stamp done
