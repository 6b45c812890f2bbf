#!/usr/bin/env bash
# The method x task table of issue #5: every (task, encoder, method) through `mirkit tune`, then `mirkit report`.
# Resumable: finished seeds are skipped, interrupted ones continue from their last checkpoint.
#
#   bash scripts/tune_table.sh SUITE_DIR OUT_DIR
# Settings (environment variables, defaults = the full CPU table of issue #5 on the standard suite):
#   TASKS="key tempo tagging instrument" (the time-resolved beat, chords, transcription work too: frame heads)
#   ENCODERS="musicnn-mtt crepe-tiny"
#   METHODS="probe finetune adapter lora ia3 bitfit" SEEDS=3 EPOCHS=30 PATIENCE=5 CROP_S=5 BATCH=16
#   SCRATCH=1 (also train the from-scratch CNN per task)  EXTRA="" (more `mirkit tune` options, e.g. --device cuda)
#   JOBS=1 (runs at once; on a large GPU several runs share it: wall and step times then include the sharing,
#   benchmarks/tune_cost.py measures step time and memory per method alone). Logs: OUT_DIR/logs/.
set -euo pipefail
SUITE=${1:?usage: tune_table.sh SUITE_DIR OUT_DIR}
OUT=${2:?usage: tune_table.sh SUITE_DIR OUT_DIR}
TASKS=${TASKS:-key tempo tagging instrument}
ENCODERS=${ENCODERS:-musicnn-mtt crepe-tiny}
METHODS=${METHODS:-probe finetune adapter lora ia3 bitfit}
SEEDS=${SEEDS:-3}; EPOCHS=${EPOCHS:-30}; PATIENCE=${PATIENCE:-5}; CROP_S=${CROP_S:-5}; BATCH=${BATCH:-16}
SCRATCH=${SCRATCH:-1}; EXTRA=${EXTRA:-}; JOBS=${JOBS:-1}
MIRKIT=${MIRKIT:-.venv/bin/mirkit}
common="--seeds $SEEDS --epochs $EPOCHS --patience $PATIENCE --crop-s $CROP_S --batch-size $BATCH --no-progress $EXTRA"
mkdir -p "$OUT/logs"
jobs_file="$OUT/logs/jobs.txt"
: > "$jobs_file"
for task in $TASKS; do
  for encoder in $ENCODERS; do
    case $task in beat|chords|transcription) crepe_fps=50 ;; *) crepe_fps=5 ;; esac  # as in the bench
    rate=""; [ "${encoder#crepe}" != "$encoder" ] && rate="--frame-rate-hz $crepe_fps"
    for method in $METHODS; do
      name="$task-${encoder//:/_}-$method"
      echo "$name tune --task $SUITE/$task --encoder $encoder --method $method --out $OUT/$name $rate $common" >> "$jobs_file"
    done
  done
  [ "$SCRATCH" = 1 ] && echo "$task-scratch tune --task $SUITE/$task --method scratch --out $OUT/$task-scratch $common" >> "$jobs_file"
done
run_one() {  # NAME ARGS...: one run, its log kept, its last lines shown
  local name=$1; shift
  echo "== $name"
  if $MIRKIT "$@" > "$OUT/logs/$name.log" 2>&1; then tail -n 2 "$OUT/logs/$name.log"
  else echo "!! $name failed (exit $?), see $OUT/logs/$name.log"; tail -n 3 "$OUT/logs/$name.log"; fi
}
export -f run_one; export MIRKIT OUT
# word splitting of each line is intended: paths in SUITE/OUT must not contain spaces. Trailing blanks are
# stripped first: `xargs -L 1` joins a line that ends in a blank with the next one (an empty EXTRA did that)
sed -i 's/[[:space:]]*$//' "$jobs_file"
xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _ < "$jobs_file"
$MIRKIT report "$OUT"
