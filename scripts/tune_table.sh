#!/usr/bin/env bash
# The method x task table of issue #5: every (task, encoder, method) through `mirkit tune`, then `mirkit report`.
# Resumable: finished seeds are skipped, interrupted ones continue from their last checkpoint.
#
#   bash scripts/tune_table.sh SUITE_DIR OUT_DIR
# Settings (environment variables, defaults = the full CPU table of issue #5 on the standard suite):
#   TASKS="key tempo tagging instrument" ENCODERS="musicnn-mtt crepe-tiny"
#   METHODS="probe finetune adapter lora ia3 bitfit" SEEDS=3 EPOCHS=30 PATIENCE=5 CROP_S=5 BATCH=16
#   SCRATCH=1 (also train the from-scratch CNN per task)  EXTRA="" (more `mirkit tune` options)
set -euo pipefail
SUITE=${1:?usage: tune_table.sh SUITE_DIR OUT_DIR}
OUT=${2:?usage: tune_table.sh SUITE_DIR OUT_DIR}
TASKS=${TASKS:-key tempo tagging instrument}
ENCODERS=${ENCODERS:-musicnn-mtt crepe-tiny}
METHODS=${METHODS:-probe finetune adapter lora ia3 bitfit}
SEEDS=${SEEDS:-3}; EPOCHS=${EPOCHS:-30}; PATIENCE=${PATIENCE:-5}; CROP_S=${CROP_S:-5}; BATCH=${BATCH:-16}
SCRATCH=${SCRATCH:-1}; EXTRA=${EXTRA:-}
MIRKIT=${MIRKIT:-.venv/bin/mirkit}
common="--seeds $SEEDS --epochs $EPOCHS --patience $PATIENCE --crop-s $CROP_S --batch-size $BATCH --no-progress $EXTRA"
for task in $TASKS; do
  for encoder in $ENCODERS; do
    rate=""; [ "${encoder#crepe}" != "$encoder" ] && rate="--frame-rate-hz 5"  # CREPE at 5 fps, as in the bench
    for method in $METHODS; do
      echo "== $task $encoder $method"
      $MIRKIT tune --task "$SUITE/$task" --encoder "$encoder" --method "$method" --out "$OUT/$task-$encoder-$method" \
        $rate $common | tail -n 2
    done
  done
  if [ "$SCRATCH" = 1 ]; then
    echo "== $task scratch"
    $MIRKIT tune --task "$SUITE/$task" --method scratch --out "$OUT/$task-scratch" $common | tail -n 2
  fi
done
$MIRKIT report "$OUT"
