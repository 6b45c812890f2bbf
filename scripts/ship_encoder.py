"""Ship a checkpoint of a `mirkit pretrain` run as one of mirkit's own encoders (weights + model card).

    python scripts/ship_encoder.py --run runs/pt-clean-small --checkpoint runs/pt-clean-small/final \
        --name mirkit-mel-small --machine "2-core AMD EPYC VM (AVX-512), 24 GB" [--scores SCORES.md]

Writes src/mirkit/encoders/shipped/NAME/ (model.safetensors, mirkit-encoder.json, MODEL_CARD.md); the
encoder zoo registers every folder there under its name, with its `random:` twin. The reproduce
commands on the card are the corpus command recorded here and the run's own settings.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirkit.pretrain.ship import ship_encoder

ROOT = Path(__file__).resolve().parents[1]
CORPUS_COMMAND = "mirkit data corpus --out runs/corpus-clean --sources generated,mma --soundfonts musescore --hours 50"


def pretrain_command(run: Path) -> str:
    config = json.loads((run / "run.json").read_text())["config"]
    defaults = {"arch": "mel", "preset": "small", "targets": "bestrq"}
    flags = [f"--{k} {config[k]}" for k in defaults] + [f"--steps {config['steps']}",
                                                         f"--checkpoint-every {config['checkpoint_every']}"]
    return f"mirkit pretrain --corpus runs/corpus-clean --out runs/{run.name} " + " ".join(flags)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path, help="RUN/final or RUN/checkpoints/step-N")
    parser.add_argument("--name", required=True)
    parser.add_argument("--machine", required=True, help="what the run trained on, in words")
    parser.add_argument("--scores", type=Path, default=None, help="a markdown file of benchmark scores for the card")
    args = parser.parse_args()
    dest = ship_encoder(checkpoint=args.checkpoint, run_dir=args.run, name=args.name,
                        dest_root=ROOT / "src/mirkit/encoders/shipped", machine=args.machine,
                        commands=[CORPUS_COMMAND, pretrain_command(args.run)],
                        scores_md=args.scores.read_text() if args.scores else "")
    print(json.dumps({"shipped": str(dest), "files": sorted(p.name for p in dest.iterdir())}))


if __name__ == "__main__":
    main()
