"""``mirkit tune``: fine-tuning, parameter-efficient methods and a from-scratch model on one task."""

from __future__ import annotations

import argparse

METHOD_NAMES = ("probe", "finetune", "adapter", "prompt", "lora", "ia3", "bitfit", "scratch")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("tune", help="train an encoder on a task with one transfer method (resumable)",
                                 description="Methods: " + ", ".join(METHOD_NAMES) + ". `--list-methods` describes "
                                 "them; `--show-modules ENCODER` prints module names for --targets.")
    parser.add_argument("--task", help="a task folder with manifest.jsonl (from `mirkit data build` / `data adapt`)")
    parser.add_argument("--encoder", help="encoder name (ignored by --method scratch)")
    parser.add_argument("--method", default="probe", choices=METHOD_NAMES)
    parser.add_argument("--out", help="run folder (tune.json, seed<k>/, results/*.json, summary.json)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--resume", default="auto", choices=("auto", "never"),
                        help="auto: continue an interrupted seed from its last checkpoint (default)")
    group = parser.add_argument_group("training")
    group.add_argument("--head", default="linear", choices=("linear", "mlp"))
    group.add_argument("--layer", default="auto", help="auto | weighted | a layer index (what the head reads)")
    group.add_argument("--lr", type=float, default=None, help="learning rate of the method's parameters "
                                                              "(default per method: finetune 1e-4, others 1e-3)")
    group.add_argument("--head-lr", type=float, default=1e-3)
    group.add_argument("--weight-decay", type=float, default=0.01)
    group.add_argument("--batch-size", type=int, default=16)
    group.add_argument("--accumulate", type=int, default=1, help="gradient accumulation steps")
    group.add_argument("--epochs", type=int, default=30, help="at most; early stopping on validation")
    group.add_argument("--patience", type=int, default=5)
    group.add_argument("--warmup", type=float, default=0.1, help="fraction of steps with linear warmup")
    group.add_argument("--crop-s", type=float, default=5.0,
                       help="training crop; evaluation averages non-overlapping windows of this length")
    group.add_argument("--checkpoint-every", type=int, default=50, help="optimizer steps between checkpoints")
    group.add_argument("--frame-rate-hz", type=float, default=None, help="for encoders with a free hop (CREPE)")
    options = parser.add_argument_group("method options")
    options.add_argument("--targets", default=None, help="module-name regex overriding the method's default targets")
    options.add_argument("--adapter-size", type=int, default=64)
    options.add_argument("--adapter-mode", default="sequential", choices=("sequential", "parallel"))
    options.add_argument("--prompt-tokens", type=int, default=16)
    options.add_argument("--prompt-depth", default="deep", choices=("shallow", "deep"))
    options.add_argument("--lora-rank", type=int, default=8)
    options.add_argument("--lora-alpha", type=float, default=16.0)
    options.add_argument("--freeze-frontend", action="store_true", help="finetune: keep the front-end frozen")
    options.add_argument("--top-blocks", type=int, default=None, help="finetune: train only the top N blocks")
    options.add_argument("--scratch-input", default="logmel", choices=("logmel", "cqt"))
    options.add_argument("--scratch-channels", type=int, default=32)
    parser.add_argument("--weights", help="encoder weights folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--list-methods", action="store_true", help="describe the methods and exit")
    parser.add_argument("--show-modules", metavar="ENCODER", help="print an encoder's module names and exit")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from mirkit.errors import ConfigError
    from mirkit.tune import METHODS, MethodOptions, TuneConfig, tune_task
    from mirkit.tune.run import format_tune_summary

    if args.list_methods:
        for name, spec in METHODS.items():
            print(f"{name:<9} {spec.family:<18} trains: {spec.trains}\n{'':28}applies to: {spec.applies_to}")
        return 0
    if args.show_modules:
        from mirkit.encoders import load_encoder

        encoder = load_encoder(args.show_modules, weights_dir=args.weights)
        for name, module in encoder.named_modules():
            if name:
                print(f"{name}  {type(module).__name__}")
        return 0
    missing = [flag for flag, value in (("--task", args.task), ("--out", args.out)) if not value]
    if args.method != "scratch" and not args.encoder:
        missing.append("--encoder")
    if missing:
        raise ConfigError(f"mirkit tune needs {', '.join(missing)}.")
    options = MethodOptions(adapter_size=args.adapter_size, adapter_mode=args.adapter_mode,
                            prompt_tokens=args.prompt_tokens, prompt_depth=args.prompt_depth, lora_rank=args.lora_rank,
                            lora_alpha=args.lora_alpha, targets=args.targets, freeze_frontend=args.freeze_frontend,
                            top_blocks=args.top_blocks, scratch_input=args.scratch_input,
                            scratch_channels=args.scratch_channels)
    config = TuneConfig(method=args.method, options=options, head=args.head, layer=args.layer, learning_rate=args.lr,
                        head_learning_rate=args.head_lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
                        accumulate=args.accumulate, max_epochs=args.epochs, patience=args.patience,
                        warmup_ratio=args.warmup, crop_s=args.crop_s, checkpoint_every=args.checkpoint_every,
                        frame_rate_hz=args.frame_rate_hz)
    summary = tune_task(task_dir=args.task, encoder=args.encoder or "logmel", out_dir=args.out, config=config,
                        seeds=args.seeds, weights_dir=args.weights, device=args.device, resume=args.resume,
                        progress=not args.no_progress)
    print(format_tune_summary(summary))
    print(f"Results: {args.out}/results/, summary: {args.out}/summary.json; apply it: mirkit predict --model {args.out}")
    return 0
