"""``mirkit data build|validate|tasks``: the offline labelled benchmark suite."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    # no choices= read from the registries here: building the parser runs on every `mirkit` call and must
    # stay light; build_suite and adapt refuse an unknown name, listing the known ones
    parser = commands.add_parser("data", help="build and validate the offline benchmark suite")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="render the labelled suite (every task of `mirkit data tasks` that it builds)")
    build.add_argument("--suite", default="quick", help="suite size (tiny, quick, standard; an unknown name is "
                       "refused with the list)")
    build.add_argument("--out", required=True)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--soundfonts", default="auto",
                       help="auto (fetch Debian's FluidR3/MuseScore when apt can) or a list, e.g. timgm6mb")
    build.add_argument("--variation", default="on", choices=("on", "off"),
                       help="on: train and validation clips at a random level (-30..-1 dBFS peak), spectral tilt and, "
                            "for half of them, a synthetic room (recorded per clip); off: every clip at -6 dBFS peak "
                            "(the test split always is)")
    build.add_argument("--renderers", default="auto",
                       help="auto: tinysoundfont, plus FluidSynth (Debian's, fetched without a system install) for "
                            "about half of the train and validation clips when available; or a list, e.g. "
                            "tinysoundfont (the test split is always tinysoundfont with its unseen soundfont)")
    build.add_argument("--mma", default="auto", choices=("auto", "off"),
                       help="auto: genre/tempo grooves from MMA when present or fetchable from Debian; off: templates")
    build.add_argument("--workers", type=int, default=None)
    build.add_argument("--no-progress", action="store_true")
    build.set_defaults(run=run_build)
    validate = actions.add_parser("validate", help="check a built suite")
    validate.add_argument("root")
    validate.add_argument("--skip-audio", action="store_true", help="skip decoding and checksums")
    validate.set_defaults(run=run_validate)
    music = actions.add_parser("music", help="gather real recordings from Debian's game-music packages")
    music.add_argument("--out", required=True)
    music.add_argument("--packages", default="default",
                       help="'default', 'all', or a comma list (see `mirkit data music --list`)")
    music.add_argument("--list", action="store_true", help="list the known packages and exit")
    music.set_defaults(run=run_music)
    adapt = actions.add_parser("adapt", help="manifests for a local copy of a public dataset")
    adapt.add_argument("name", help="the dataset (an unknown name is refused with the list of adapters)")
    adapt.add_argument("--root", required=True, help="the dataset's top folder")
    adapt.add_argument("--out", required=True, help="where to write <task>/manifest.jsonl")
    adapt.add_argument("--audio", help="mtg-jamendo: the audio folder (PATH column is relative to it)")
    adapt.add_argument("--splits", help="gtzan: folder with train/valid/test_filtered.txt")
    adapt.set_defaults(run=run_adapt)
    tasks = actions.add_parser("tasks", help="list the tasks")
    tasks.set_defaults(run=run_tasks)
    corpus = actions.add_parser("corpus", help="gather unlabelled music for `mirkit pretrain` (offline, with provenance)")
    corpus.add_argument("--out", required=True, help="corpus folder (corpus.jsonl, corpus.json, audio/; rerun resumes)")
    corpus.add_argument("--hours", type=float, default=None, help="stop the built-in sources after about this many hours (default: all; --add folders are always taken whole)")
    corpus.add_argument("--sources", default="music21,debian",
                        help="comma list of music21, debian, mma, generated (mma: new grooves through Debian's MMA; generated: random tonal pieces by mirkit; generated,mma with --soundfonts musescore is licence-clean)")
    corpus.add_argument("--packages", default=None, help="Debian music packages (default: all known but Fretsonfire)")
    corpus.add_argument("--add", action="append", default=[], metavar="DIR", help="your own music (repeatable)")
    corpus.add_argument("--exclude-suite", action="append", default=[], metavar="SUITE",
                        help="also drop every piece of this suite (repeatable)")
    corpus.add_argument("--soundfonts", default="auto",
                        help="auto: the suite's training soundfonts (never its test one), or a list, e.g. musescore")
    corpus.add_argument("--renderers", default="tinysoundfont",
                        help="synthesisers drawn per rendered piece: tinysoundfont, auto (plus FluidSynth when it is "
                             "here) or a comma list")
    corpus.add_argument("--variation", choices=("on", "off"), default="off",
                        help="on: the suite's level, spectral tilt and room on every rendered piece")
    corpus.add_argument("--seed", type=int, default=0)
    corpus.add_argument("--workers", type=int, default=None)
    corpus.add_argument("--no-progress", action="store_true")
    corpus.set_defaults(run=run_corpus)


def run_build(args: argparse.Namespace) -> int:
    from mirkit.data.suite import build_suite

    info = build_suite(suite=args.suite, out_dir=args.out, seed=args.seed, soundfonts=args.soundfonts,
                       mma=args.mma, variation=args.variation, renderers=args.renderers, workers=args.workers, progress=not args.no_progress)
    sf = info["soundfonts"]
    for name, status in sorted(sf["status"].items()):
        print(f"soundfont {name}: {status}")
    print(f"train/valid rendered with {', '.join(sf['train'])}; test with {sf['test']}"
          + ("" if sf["test_unseen_in_train"] else " (WARNING: the same soundfont as train: test timbres are not unseen)"))
    for name, status in info["material"].items():
        print(f"material {name}: {status}")
    print("variation: " + ("train/valid clips at a random level, tilt and room (per clip in each manifest); test at "
                           "-6 dBFS peak" if info["variation"] != "off" else "off (every clip at -6 dBFS peak)"))
    print(f"renderers: train/valid {', '.join(info['renderers']['train_valid'])}; test {info['renderers']['test']}")
    for task, counts in info["counts"].items():
        print(f"  {task:<11} " + "  ".join(f"{split} {counts.get(split, 0)}" for split in ("train", "valid", "test")))
    print(f"Built suite '{info['suite']}' (seed {info['seed']}) in {info['build_s']} s: {args.out}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from mirkit.data.validate import machine_differences, validate_suite

    problems = validate_suite(args.root, check_audio=not args.skip_audio)
    for problem in problems:
        print(problem)
    for difference in machine_differences(args.root):
        print(f"note: a rebuild here would differ: {difference}")
    print(f"{args.root}: {'valid' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


def run_tasks(args: argparse.Namespace) -> int:
    from mirkit.data.tasks import TASKS
    from mirkit.kinds import KINDS

    for name, spec in TASKS.items():
        kind = spec.task_kind
        size = (f"{len(spec.vocabulary)} stems" if kind.level == "stems" else f"{len(spec.vocabulary)} classes"
                if spec.vocabulary else "time-resolved" if kind.frame_level else "continuous")
        print(f"{name:<13} {spec.kind:<13} {size:<12} metric={spec.metric:<15} {spec.description}")
    for name, kind in KINDS.items():  # how a task's labels are trained, decoded and scored
        print(f"kind {name:<13} {kind.level:<6} {kind.description}")
    return 0


def run_music(args: argparse.Namespace) -> int:
    from mirkit.data.library import DEFAULT_PACKAGES, MUSIC_PACKAGES, gather_music
    from mirkit.errors import ConfigError

    if args.list:
        for name, what in MUSIC_PACKAGES.items():
            print(f"{name:<28} {'default ' if name in DEFAULT_PACKAGES else '        '}{what}")
        return 0
    if args.packages == "default":
        packages = list(DEFAULT_PACKAGES)
    elif args.packages == "all":
        packages = list(MUSIC_PACKAGES)
    else:
        packages = [p.strip() for p in args.packages.split(",") if p.strip()]
        unknown = [p for p in packages if p not in MUSIC_PACKAGES]
        if unknown:
            raise ConfigError(f"unknown music packages {unknown}; see `mirkit data music --list`.")
    summary = gather_music(out_dir=args.out, packages=packages)
    for package, status in summary["status"].items():
        print(f"{package:<28} {status}")
    print(f"Library: {summary['tracks']} tracks ({summary.get('hours', 0)} h) in {args.out}/library.jsonl; "
          f"real-tempo test set: {args.out}/tempo_real/manifest.jsonl")
    return 0


def run_adapt(args: argparse.Namespace) -> int:
    from mirkit.data.public import adapt

    options = {}
    if args.name == "mtg-jamendo":
        options["audio_dir"] = args.audio or args.root
    if args.name == "gtzan":
        options["splits_dir"] = args.splits or args.root
    counts = adapt(args.name, root=args.root, out_dir=args.out, **options)
    for task, count in counts.items():
        print(f"{task}: {count} clips -> {args.out}/{task}/manifest.jsonl")
    return 0


def run_corpus(args: argparse.Namespace) -> int:
    from mirkit.data.corpus import build_corpus

    summary = build_corpus(out_dir=args.out, hours=args.hours, sources=[s.strip() for s in args.sources.split(",")
                                                                        if s.strip()],
                           packages=args.packages.split(",") if args.packages else None, add=args.add,
                           seed=args.seed, exclude_suites=args.exclude_suite, workers=args.workers,
                           soundfonts=args.soundfonts, renderers=args.renderers, variation=args.variation == "on",
                           progress=not args.no_progress)
    by = ", ".join(f"{k} {v} h" for k, v in summary["hours_by_source"].items())
    print(f"Corpus {args.out}: {summary['hours']} h ({by}), {summary['pieces']} pieces in {summary['chunks']} chunks, "
          f"{summary['gb']} GB, {summary['duplicates_dropped']} duplicates dropped, built in {summary['build_s']} s. "
          f"Skipped pieces and why: {args.out}/skipped.jsonl. Pretrain: mirkit pretrain --corpus {args.out} --out RUN")
    return 0
