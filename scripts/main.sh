#!/usr/bin/env bash
# The main job: set up, build the offline `quick` suite, benchmark the default offline encoders
# (musicnn-mtt, crepe-tiny, mirkit's own mirkit-mel-small, two random-init twins, handcrafted baselines) and the installed peers on its
# clip-level tasks and its frame-level ones (beat, chords, transcription), and write the report. Rerunning resumes: the suite, stored features and finished jobs are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${MIRKIT_RUNS:-runs}
bash scripts/setup.sh
if [ -f "$RUNS/suite-quick/suite.json" ]; then
  echo "Suite: reusing $RUNS/suite-quick (delete it to rebuild)"
else
  .venv/bin/mirkit data build --suite quick --out "$RUNS/suite-quick"
fi
# frame-level tasks (beat, chords, transcription) with one seed: three would take the main job past 20 min on 2 cores;
# two worker processes of one thread each (--jobs 2) finish sooner than one two-thread process on 2 cores
.venv/bin/mirkit bench --suite "$RUNS/suite-quick" --out "$RUNS/bench-quick" --frame-seeds 1 --jobs 2 --report
echo "Open $RUNS/bench-quick/report.html (or report.md)"
