#!/usr/bin/env bash
# The booster table of issue #19: every (task model, encoder) through `mirkit boost`, one report each.
# Resumable: finished cells are kept, so rerunning continues where a run stopped.
#
#   bash scripts/boost_table.sh SUITE_DIR OUT_DIR
# Settings (environment variables; defaults = the table for the quick or standard suite on a CPU):
#   MODELS="beat-tcn:beat onsets-frames:transcription short-chunk:tagging"   (model:task pairs)
#   ENCODERS="musicnn-mtt crepe-tiny"  FRACTIONS=0.01,0.1,1  SEEDS=3  STEPS=600  EVAL_EVERY=100  PATIENCE=3
#   FUSION=concat  EXTRA="" (more `mirkit boost` options)   Logs: OUT_DIR/logs/.
set -euo pipefail
SUITE=${1:?usage: boost_table.sh SUITE_DIR OUT_DIR}
OUT=${2:?usage: boost_table.sh SUITE_DIR OUT_DIR}
MODELS=${MODELS:-beat-tcn:beat onsets-frames:transcription short-chunk:tagging}
ENCODERS=${ENCODERS:-musicnn-mtt crepe-tiny}
FRACTIONS=${FRACTIONS:-0.01,0.1,1}; SEEDS=${SEEDS:-3}; STEPS=${STEPS:-600}; EVAL_EVERY=${EVAL_EVERY:-100}
PATIENCE=${PATIENCE:-3}; FUSION=${FUSION:-concat}; EXTRA=${EXTRA:-}
MIRKIT=${MIRKIT:-.venv/bin/mirkit}
mkdir -p "$OUT/logs"
for pair in $MODELS; do
  model=${pair%%:*}; task=${pair#*:}
  for encoder in $ENCODERS; do
    rate=""; [ "${encoder#crepe}" != "$encoder" ] && rate="--frame-rate-hz 50"  # CREPE at 50 fps, as in the bench
    name="$task-$model-${encoder//:/_}"
    echo "== $name"
    # word splitting of the options is intended: paths in SUITE/OUT must not contain spaces
    if $MIRKIT boost --task "$SUITE/$task" --model "$model" --encoder "$encoder" --out "$OUT/$name" \
        --store "$OUT/features" --fractions "$FRACTIONS" --seeds "$SEEDS" --steps "$STEPS" \
        --eval-every "$EVAL_EVERY" --patience "$PATIENCE" --fusion "$FUSION" $rate --no-progress $EXTRA \
        > "$OUT/logs/$name.log" 2>&1; then tail -n 8 "$OUT/logs/$name.log"
    else echo "!! $name failed (exit $?), see $OUT/logs/$name.log"; tail -n 3 "$OUT/logs/$name.log"; fi
  done
done
