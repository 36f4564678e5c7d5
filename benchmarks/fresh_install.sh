#!/usr/bin/env bash
# olor-mm as a new user meets it: a fresh venv with the OpenMMLab stack
# from the package index (mmcv from the wheel cache where PIP_FIND_LINKS
# has one), olor-mm from a wheel built from this checkout (not editable;
# nothing of the checkout on the path afterwards), then, in a directory of
# the user's:
#   1. MMDetection's own tools/train.py (its wheel's .mim/tools) on the
#      README's inheriting config, as printed (Mask R-CNN R50), on the demo
#      data (--cfg-options shrink it to 160 px and 4 iterations; the
#      backbone starts from its random init: nothing is downloaded);
#   2. MMDetection's analyze_logs.py plot_curve --keys loss / a drift key on
#      that run's json log, and the counts of step, loss and drift;
#   3. olor-mm's tools by `python -m olor_mm.tools.<tool>`: print_layers and
#      smoke_train on two upstream configs given only the constructor,
#      forgetting --plan then its two smallest runs (plain, olor), and
#      publish_model and plot_drift on step 1's run;
#   4. the README's AdamW block trained the same way, and the checkpoint
#      sizes of both runs (benchmarks/checkpoint_size.py: docs/usage.md);
#   5. `mim train mmdet` on the same config, after installing openmim (it
#      says what that install changed of the environment).
#
#   bash benchmarks/fresh_install.sh [WORK]      # WORK: /tmp/olor_fresh
#
# Each step prints what it checks; the script stops at the first failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${1:-/tmp/olor_fresh}
PY=${PYTHON:-python3.11}
rm -rf "$W" && mkdir -p "$W/user"
step() { echo; echo "=== $* ($(date +%T))"; }

step "0. fresh venv, the stack, olor-mm from its wheel"
$PY -m venv "$W/venv"
V="$W/venv/bin"
C="$ROOT/requirements/constraints.txt"
"$V/pip" install -q -c "$C" torch==2.13.0 'setuptools<81' wheel
"$V/pip" install -q -c "$C" mmengine mmcv mmdet
# the wheel from a copy of the tracked tree (a build in place writes
# olor_mm/.mim and build/ into the checkout)
git -C "$ROOT" archive --format=tar HEAD | (mkdir -p "$W/src" && tar -x -C "$W/src")
"$V/pip" wheel -q --no-deps --no-build-isolation "$W/src" -w "$W/wheel"
WHEEL=$(ls "$W"/wheel/olor_mm-*.whl)
"$V/pip" install -q -c "$C" "$WHEEL[mmdet]"
"$V/pip" list 2>/dev/null | grep -iE '^(torch|mmengine|mmcv|mmdet|olor-mm|setuptools) '
"$V/python" - "$WHEEL" <<'PY'
import sys, zipfile
top = {n.split('/')[0] for n in zipfile.ZipFile(sys.argv[1]).namelist()}
print('wheel top level:', sorted(top))
assert {t for t in top if not t.endswith('.dist-info')} == {'olor_mm'}
PY
cd "$W/user"
"$V/python" -c "import olor_mm, sys; print('olor_mm from', olor_mm.__file__); assert 'site-packages' in olor_mm.__file__"

step "demo data (the repository's generator; the data only)"
"$V/python" "$ROOT/tools/make_demo_data.py" --out "$W/data" --num-train 16 --num-val 4
D="$W/data/downstream"
MMDET=$("$V/python" -c "import mmdet, os; print(os.path.dirname(mmdet.__file__))")

step "1. MMDetection's own tools/train.py on the README's config"
"$V/python" - "$ROOT/README.md" my_config.py <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = next(b for b in re.findall(r'```python\n(.*?)```', text, re.S)
             if 'from olor_mm.configs.olor import' in b)
open(sys.argv[2], 'w').write(block)
print(block)
PY
CLASSES="('star','cross','ring','arrow')"
OPTS=(
  "train_dataloader.dataset.data_root=$D/" train_dataloader.dataset.ann_file=instances_train.json
  train_dataloader.dataset.data_prefix.img=images/ "train_dataloader.dataset.metainfo.classes=$CLASSES"
  "train_dataloader.dataset.pipeline.2.scale=(160,160)" train_dataloader.dataset.indices=8
  train_dataloader.batch_size=2 train_dataloader.num_workers=0 train_dataloader.persistent_workers=False
  "val_dataloader.dataset.data_root=$D/" val_dataloader.dataset.ann_file=instances_val.json
  val_dataloader.dataset.data_prefix.img=images/ "val_dataloader.dataset.metainfo.classes=$CLASSES"
  "val_dataloader.dataset.pipeline.1.scale=(160,160)" val_dataloader.num_workers=0
  val_dataloader.persistent_workers=False "val_evaluator.ann_file=$D/instances_val.json"
  "test_dataloader.dataset.data_root=$D/" test_dataloader.dataset.ann_file=instances_val.json
  test_dataloader.dataset.data_prefix.img=images/ "test_dataloader.dataset.metainfo.classes=$CLASSES"
  "test_dataloader.dataset.pipeline.1.scale=(160,160)" test_dataloader.num_workers=0
  test_dataloader.persistent_workers=False "test_evaluator.ann_file=$D/instances_val.json"
  model.roi_head.bbox_head.num_classes=4 model.roi_head.mask_head.num_classes=4
  model.backbone.init_cfg=None train_cfg.max_epochs=1 default_hooks.logger.interval=1
)
"$V/python" "$MMDET/.mim/tools/train.py" my_config.py --work-dir "$W/run" --cfg-options "${OPTS[@]}" > "$W/run.out" 2>&1 \
  || { tail -40 "$W/run.out"; exit 1; }
LOG=$(ls "$W"/run/*/*.log)
grep -m1 -A4 "OLOR layer-wise rollback" "$LOG"
grep "RollbackDriftHook \[" "$LOG" | tail -2
grep -q "RollbackDriftHook \[4\]" "$LOG"

step "2. MMDetection's analyze_logs.py on its json log"
JSON=$(ls "$W"/run/*/vis_data/2*.json)
"$V/pip" install -q seaborn
"$V/python" "$MMDET/.mim/tools/analysis_tools/analyze_logs.py" plot_curve "$JSON" --keys loss --out "$W/loss.png" --backend Agg
"$V/python" "$MMDET/.mim/tools/analysis_tools/analyze_logs.py" plot_curve "$JSON" --keys drift.backbone.stage4 --out "$W/drift.png" --backend Agg
"$V/python" - "$MMDET" "$JSON" <<'PY'
import importlib.util, os, sys
spec = importlib.util.spec_from_file_location('analyze_logs', os.path.join(
    sys.argv[1], '.mim', 'tools', 'analysis_tools', 'analyze_logs.py'))
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
series = m.load_json_logs([sys.argv[2]])[0][1]
counts = {k: len(series[k]) for k in ('step', 'loss', 'drift.backbone.stage4', 'lam_eff.backbone.stage4')}
print('points per key:', counts)
assert set(counts.values()) == {4}, counts
PY

step "3a. print_layers and smoke_train on upstream configs, constructor only"
for c in mmdet::yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py mmdet::rtmdet/rtmdet-ins_s_8xb32-300e_coco.py; do
  "$V/python" -m olor_mm.tools.print_layers "$c" --cfg-options optim_wrapper.constructor=LayerwiseRollbackConstructor | head -4
  "$V/python" -m olor_mm.tools.smoke_train "$c" --work-dir "$W/smoke/$(basename "$c" .py)" \
    --cfg-options optim_wrapper.constructor=LayerwiseRollbackConstructor | tail -1
done
if "$V/python" -m olor_mm.tools.print_layers mmdet::yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py \
    --cfg-options optim_wrapper.constructor=LayerwiseRollbackConstructor optim_wrapper.paramwise_cfg.rollback_mx=0.1 > "$W/typo.out" 2>&1; then
  echo "a typo passed"; exit 1
fi
echo "typo: $(wc -l < "$W/typo.out") line(s): $(cut -c1-150 "$W/typo.out")"

step "3b. forgetting: --plan, then its two smallest runs"
U="$W/data/upstream"
"$V/python" -m olor_mm.tools.train olor_mm::demo/mask-rcnn_r18-tiny_demo-upstream.py --work-dir "$W/up" \
  --cfg-options "train_dataloader.dataset.data_root=$U/" "val_dataloader.dataset.data_root=$U/" \
  "test_dataloader.dataset.data_root=$U/" "val_evaluator.ann_file=$U/instances_val.json" \
  "test_evaluator.ann_file=$U/instances_val.json" train_cfg.max_iters=20 train_cfg.val_interval=20 \
  default_hooks.checkpoint.interval=20 > "$W/up.out" 2>&1 || { tail -30 "$W/up.out"; exit 1; }
DOWN=("train_dataloader.dataset.data_root=$D/" "val_dataloader.dataset.data_root=$D/"
      "test_dataloader.dataset.data_root=$D/" "val_evaluator.ann_file=$D/instances_val.json"
      "test_evaluator.ann_file=$D/instances_val.json" train_cfg.max_iters=30
      param_scheduler.1.T_max=30 param_scheduler.1.end=30 default_hooks.checkpoint.interval=30)
UPOPTS=("train_dataloader.dataset.data_root=$U/" "val_dataloader.dataset.data_root=$U/"
        "test_dataloader.dataset.data_root=$U/" "val_evaluator.ann_file=$U/instances_val.json"
        "test_evaluator.ann_file=$U/instances_val.json")
FARGS=(--upstream-config olor_mm::demo/mask-rcnn_r18-tiny_demo-upstream.py
       --upstream-checkpoint "$W/up/iter_20.pth"
       --downstream-config olor_mm::demo/mask-rcnn_r18-tiny_demo-downstream_olor.py
       --work-dir "$W/forgetting" --methods plain olor --grid olor=0.1
       --cfg-options "${DOWN[@]}" --upstream-cfg-options "${UPOPTS[@]}")
"$V/python" -m olor_mm.tools.forgetting "${FARGS[@]}" --plan
START=$(date +%s)
"$V/python" -m olor_mm.tools.forgetting "${FARGS[@]}" | tail -25
echo "the two runs took $(( $(date +%s) - START )) s of wall time (including the report)"

step "3c. publish_model and plot_drift on step 1's run"
"$V/python" -m olor_mm.tools.publish_model "$W/run/epoch_1.pth" "$W/published.pth"
"$V/python" -m olor_mm.tools.plot_drift "$W/run" --out "$W/drift_stages.png"

step "4. checkpoint sizes: the README's AdamW block, trained the same way"
"$V/python" - "$ROOT/README.md" my_config_adamw.py <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = next(b for b in re.findall(r'```python\n(.*?)```', text, re.S)
             if "type='AdamW'" in b and '_delete_=True' in b)
open(sys.argv[2], 'w').write(block + "custom_hooks = [dict(type='RollbackDriftHook')]\n")
PY
"$V/python" "$MMDET/.mim/tools/train.py" my_config_adamw.py --work-dir "$W/run_adamw" --cfg-options "${OPTS[@]}" > "$W/run_adamw.out" 2>&1 \
  || { tail -40 "$W/run_adamw.out"; exit 1; }
"$V/python" "$ROOT/benchmarks/checkpoint_size.py" "$W/run/epoch_1.pth" "$W/run_adamw/epoch_1.pth" \
  --names "Mask R-CNN R50, SGD (momentum)" "Mask R-CNN R50, AdamW"

step "5. mim train mmdet"
"$V/pip" list --format=freeze > "$W/before_mim.txt"
"$V/pip" install -q openmim 2> "$W/mim_install.err" || { cat "$W/mim_install.err"; exit 1; }
"$V/pip" list --format=freeze > "$W/after_mim.txt"
echo "what installing openmim changed of what was there:"
"$V/python" - "$W/before_mim.txt" "$W/after_mim.txt" <<'PY'
import sys
def read(p):
    return dict(l.strip().split('==', 1) for l in open(p) if '==' in l)
before, after = read(sys.argv[1]), read(sys.argv[2])
changed = {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
for k, (old, new) in sorted(changed.items()):
    print(f'  {k}: {old} -> {new}')
print(f'  (and {len(set(after) - set(before))} packages added)')
PY
grep -i "conflict\|requires" "$W/mim_install.err" || true
"$V/mim" train mmdet my_config.py --work-dir "$W/mim_run" --cfg-options "${OPTS[@]}" > "$W/mim.out" 2>&1 \
  || { tail -40 "$W/mim.out"; exit 1; }
grep -m1 "OLOR layer-wise rollback" "$W"/mim_run/*/*.log
grep "RollbackDriftHook \[4\]" "$W"/mim_run/*/*.log | cut -c1-160
step "done"
