#!/usr/bin/env bash
# The main job: set up, build the offline `quick` suite, benchmark the default offline encoders
# (musicnn-mtt, crepe-tiny, a random-init twin, handcrafted baselines) and the installed peers on it,
# and write the report. Rerunning resumes: the suite, stored features and finished jobs are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${MIRKIT_RUNS:-runs}
bash scripts/setup.sh
if [ -f "$RUNS/suite-quick/suite.json" ]; then
  echo "Suite: reusing $RUNS/suite-quick (delete it to rebuild)"
else
  .venv/bin/mirkit data build --suite quick --out "$RUNS/suite-quick"
fi
.venv/bin/mirkit bench --suite "$RUNS/suite-quick" --out "$RUNS/bench-quick" --report
echo "Open $RUNS/bench-quick/report.html (or report.md)"
