"""``mirkit pretrain``: MERT-style masked-prediction pretraining on a corpus folder (resumable).

Options are generated from ``PretrainConfig`` (one default each, in the library) and added when the
command is parsed, so other commands do not import torch.
"""

from __future__ import annotations

import argparse
import os


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("pretrain", help="self-supervised pretraining of an encoder on a corpus (resumable)",
                                 description="Masked prediction of discrete targets (BEST-RQ or k-means) with MERT's "
                                 "CQT teacher and in-batch mixing. The result RUN/final is accepted as --encoder by "
                                 "every command. Build a corpus with `mirkit data corpus`.")
    parser.populate = _add_options


def _add_options(parser: argparse.ArgumentParser) -> None:
    from mirkit.cli.options import add_options
    from mirkit.pretrain.config import PretrainConfig

    parser.add_argument("--corpus", required=True, help="corpus folder from `mirkit data corpus` (corpus.jsonl)")
    parser.add_argument("--out", required=True, help="run folder (run.json, state/, checkpoints/, final/)")
    parser.add_argument("--resume", default="auto", choices=("auto", "never"),
                        help="auto: continue from the last checkpoint (default); never: start over")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=None, help="data-loading processes (default: cores - 1, at most 2)")
    parser.add_argument("--eval-task", default=None, metavar="TASK_DIR",
                        help="probe every checkpoint on this suite task and print its validation score")
    parser.add_argument("--no-progress", action="store_true")
    add_options(parser.add_argument_group("pretraining"), [PretrainConfig])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirkit.cli.options import config_from_args
    from mirkit.pretrain.config import PretrainConfig
    from mirkit.pretrain.run import pretrain

    config = config_from_args(PretrainConfig, args)
    report = pretrain(corpus=args.corpus, out_dir=args.out, config=config, device=args.device, resume=args.resume,
                      workers=args.workers, progress=not args.no_progress, eval_task=args.eval_task)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(report.summary())
    return 0
