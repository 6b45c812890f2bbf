"""``mirkit index``, ``mirkit search [query]``, ``mirkit search train`` and ``mirkit serve``."""

from __future__ import annotations

import argparse
import json


def add_parser(commands: argparse._SubParsersAction) -> None:
    _add_index(commands)
    group = commands.add_parser("search", help="search an index (`search [query]`) or train its joint model "
                                "(`search train`)", description="Subcommands: query (the default: `mirkit search "
                                "TEXT --db LIB` is `mirkit search query TEXT --db LIB`) and train.")
    group.default_subcommand, group.subcommands = "query", ("query", "train")
    searches = group.add_subparsers(dest="search_command", metavar="{query,train}")
    _add_query(searches)
    _add_train(searches)
    _add_serve(commands)


def _add_index(commands: argparse._SubParsersAction) -> None:
    index = commands.add_parser("index", help="index a music folder for search (LanceDB; incremental rescans)")
    index.add_argument("folder", help="music folder (scanned recursively; a `mirkit data music` folder or a suite work too)")
    index.add_argument("--db", required=True, help="index folder (created; rerun to rescan)")
    index.add_argument("--encoder", default="musicnn-mtt", help="audio encoder whose clip features are the audio vectors")
    index.add_argument("--layer", type=int, default=None, help="encoder layer (default: musicnn penultimate, else the middle)")
    index.add_argument("--weights", default=None, help="local weights folder for the encoder")
    index.add_argument("--device", default="cpu")
    index.add_argument("--batch-size", type=int, default=8)
    index.add_argument("--no-pseudo-tags", action="store_true", help="do not add musicnn tag predictions as words")
    index.add_argument("--store", default=None, help="feature store folder (default: DB/features)")
    index.add_argument("--no-analysis", action="store_true", help="do not analyse key, tempo, chords and instrument "
                       "(the shipped heads of `mirkit analyze`; search filters need them)")
    index.add_argument("--heads", default=None, help="analysis bundle for key, tempo, chords and instrument "
                       "(default: the heads shipped with mirkit)")
    index.add_argument("--strict", action="store_true", help="exit 1 when any file was skipped")
    index.add_argument("--no-progress", action="store_true")
    index.set_defaults(run=run_index)


def _add_query(searches: argparse._SubParsersAction) -> None:
    search = searches.add_parser("query", help="search by text, by example or by artist (the default)",
                                 description="Hybrid text search (joint-space or MiniLM similarity fused with "
                                 "full-text search by reciprocal rank fusion), query by example (--like), more like "
                                 "an artist (--artist). Train a joint model with `mirkit search train`.")
    search.add_argument("query", nargs="?", help="what to look for, e.g. \"calm solo piano\"")
    search.add_argument("--db", required=True, help="index folder from `mirkit index`")
    search.add_argument("--model", default=None, help="joint model from `mirkit search train` (default: none, "
                        "MiniLM text similarity)")
    search.add_argument("--k", type=int, default=10, help="results (1-100)")
    search.add_argument("--like", default=None, help="query by example: an audio file, or an indexed track id")
    search.add_argument("--artist", default=None, help="more like this artist (tracks by other artists)")
    search.add_argument("--only-artist", default=None, help="filter: results by this artist only")
    search.add_argument("--only-genre", default=None, help="filter: results of this genre only")
    search.add_argument("--where", default=None, help="filter by the tracks' analysis, e.g. \"D minor, 110-130 BPM, "
                        "piano\" (key, tempo range, instrument family); with no query, lists the matching tracks")
    search.add_argument("--sort", default="title", choices=("title", "tempo", "key", "duration"),
                        help="order of the tracks listed by --where without a query")
    search.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    search.add_argument("--text-runtime", choices=("auto", "onnxruntime", "torch"), default="auto",
                        help="how the query is encoded: auto (the ONNX graph and tokenizer that `mirkit index` "
                             "recorded, without importing torch or transformers; PyTorch when there is none), "
                             "onnxruntime (required) or torch")
    search.set_defaults(run=run_search)


def _add_train(searches: argparse._SubParsersAction) -> None:
    train = searches.add_parser("train", help="train the joint text-audio model")
    train.add_argument("--db", required=True, help="index folder from `mirkit index`")
    train.add_argument("--out", required=True, help="model folder (model.safetensors, search_model.json, metrics.md)")
    train.add_argument("--captions", default="tags=1,metadata=1,artist=1,free=1",
                       help="caption sources and sampling ratios, e.g. tags=2,metadata=1 (unnamed sources are off)")
    train.add_argument("--artist-similarity", default=None, help="JSON {artist: [similar artists]}")
    train.add_argument("--free-captions", default=None, help="JSONL {\"path\" or \"id\": ..., \"caption\": ...}")
    train.add_argument("--epochs", type=int, default=200, help="at most; early stopping on validation MRR")
    train.add_argument("--patience", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--dim", type=int, default=128, help="joint-space dimension")
    train.add_argument("--text-lora-rank", type=int, default=0, help="> 0: LoRA on the MiniLM text encoder")
    train.add_argument("--caption-bank", type=int, default=16,
                       help="captions drawn and encoded once per training track (fast steps); 0 = fresh every step")
    train.add_argument("--valid-fraction", type=float, default=0.1, help="for tracks without a suite split")
    train.add_argument("--test-fraction", type=float, default=0.1, help="for tracks without a suite split")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(run=run_train)


def _add_serve(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="the search web page and its API (FastAPI + uvicorn)")
    serve.add_argument("--db", required=True, help="index folder from `mirkit index`")
    serve.add_argument("--model", default=None, help="joint model from `mirkit search train`")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--text-runtime", choices=("auto", "onnxruntime", "torch"), default="auto",
                       help="how queries are encoded: auto (ONNX Runtime when installed and equal to PyTorch; about "
                            "3x faster per query), onnxruntime (required) or torch")
    serve.set_defaults(run=run_serve)


def run_index(args: argparse.Namespace) -> int:
    from mirkit.retrieval.index import IndexConfig, index_library

    config = IndexConfig(encoder=args.encoder, layer=args.layer, weights_dir=args.weights, device=args.device,
                         batch_size=args.batch_size, pseudo_tags=not args.no_pseudo_tags, store=args.store,
                         analysis=not args.no_analysis, analysis_heads=args.heads)
    report = index_library(args.folder, db=args.db, config=config, progress=not args.no_progress)
    print(report.summary())
    return 1 if args.strict and report.skipped else 0


def run_search(args: argparse.Namespace) -> int:
    from mirkit.errors import ConfigError
    from mirkit.retrieval.analysis_fields import parse_where
    from mirkit.retrieval.search import SearchEngine

    where = parse_where(args.where)  # a filter that cannot be read fails before the index is opened
    modes = [m for m in (args.query, args.like, args.artist) if m]
    if len(modes) > 1 or (not modes and not where):
        raise ConfigError("give exactly one of QUERY, --like FILE_OR_ID or --artist NAME, or --where alone to list "
                          "tracks by key, tempo and instrument (to train a model: `mirkit search train --db LIB "
                          "--out MODEL`).")
    engine = SearchEngine(args.db, model=args.model, text_runtime=args.text_runtime)
    if where and not any(row.get("key") or row.get("tempo_bpm") for row in engine.rows):
        raise ConfigError(f"index {args.db} has no analysis to filter by; rescan it with `mirkit index MUSIC --db "
                          f"{args.db}` (without --no-analysis).")
    if args.query:
        hits = engine.search(args.query, k=args.k, artist=args.only_artist, genre=args.only_genre, where=where)
    elif args.like:
        from pathlib import Path

        target = {"path": args.like} if Path(args.like).exists() else {"track_id": args.like}
        hits = engine.like(k=args.k, artist=args.only_artist, genre=args.only_genre, where=where, **target)
    elif args.artist:
        hits = engine.like_artist(args.artist, k=args.k)
    else:
        hits = engine.browse(where=where, sort=args.sort, k=args.k, artist=args.only_artist, genre=args.only_genre)
    if args.json:
        for hit in hits:
            print(json.dumps(hit.to_dict()))
        return 0
    for rank, hit in enumerate(hits, start=1):
        who = f" — {hit.artist}" if hit.artist else ""
        album = f" [{hit.album}]" if hit.album else ""
        facts = ", ".join(x for x in (hit.key, f"{hit.tempo_bpm:.0f} BPM" if hit.tempo_bpm else None, hit.instrument)
                          if x)
        print(f"{rank:>3}. {hit.score:.4f}  {hit.title}{who}{album}{f'  <{facts}>' if facts else ''}  ({hit.id})")
    if not hits:
        print("no results")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from mirkit.retrieval.captions import CaptionConfig, parse_ratios
    from mirkit.retrieval.evaluate import format_table
    from mirkit.retrieval.train import SearchTrainConfig, train_search_model

    config = SearchTrainConfig(dim=args.dim, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
                               lr=args.lr, seed=args.seed, text_lora_rank=args.text_lora_rank,
                               caption_bank=args.caption_bank, valid_fraction=args.valid_fraction, test_fraction=args.test_fraction)
    captions = CaptionConfig(ratios=parse_ratios(args.captions), artist_similarity=args.artist_similarity,
                             free_captions=args.free_captions)
    summary = train_search_model(db=args.db, out=args.out, config=config, captions=captions,
                                 progress=not args.no_progress)
    print(f"Trained on {summary['tracks']['train']} tracks (best epoch {summary['best_epoch']}, "
          f"{summary['wall_s']} s); test tracks: {summary['tracks']['test']}")
    print(format_table(summary["test"]))
    print(f"Model: {args.out}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mirkit.retrieval.search import SearchEngine
    from mirkit.web.app import create_app

    engine = SearchEngine(args.db, model=args.model, text_runtime=args.text_runtime)
    print(f"Queries are encoded with {engine.text_encoder.runtime}.")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: --host {args.host} makes the page and every indexed track reachable from other machines; "
              "there is no authentication.")
    print(f"Serving {len(engine.rows):,} tracks from {args.db} on http://{args.host}:{args.port}/")
    uvicorn.run(create_app(engine), host=args.host, port=args.port, log_level="warning")
    return 0
