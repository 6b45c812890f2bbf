"""Search latency at library scale (issue #6 target: p50 <= 20 ms at 100k tracks on 2 cores).

Builds a synthetic index of N tracks (random audio and text vectors, titles/artists/tags drawn
from word lists, written through the same LanceDB schema and query snapshot as ``mirkit index``),
a randomly initialised joint model of the real shape (200-d musicnn features -> 128-d), and
times ``SearchEngine.search`` end to end: MiniLM query encoding, joint-space projection, exact
dense search, BM25 full-text search (the query snapshot) and the RRF fusion. Every query is distinct, so the
text encoder's memo never hides its cost. ``retrieval_*`` times the same search with the query
vector given (dense + full-text + fusion over the synthetic vectors); the components and query
by example are timed too. JSON line last.

    python benchmarks/search_latency.py --tracks 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

WORDS = ("calm epic battle forest night theme march swing brass rock guitar piano ambient dark light journey "
         "storm castle river dawn dusk hero village dance waltz folk strings choir drums bass organ flute").split()


def build(db: Path, tracks: int, text_encoder, seed: int) -> None:
    import lancedb

    from mirkit.files import atomic_write_bytes
    from mirkit.retrieval.index import TABLE, rows_to_arrow, track_text
    from mirkit.retrieval.snapshot import write_snapshot

    rng = np.random.default_rng(seed)
    connection = lancedb.connect(str(db))
    table = None
    for start in range(0, tracks, 20000):
        rows = []
        for i in range(start, min(tracks, start + 20000)):
            words = rng.choice(WORDS, size=5)
            row = {"id": f"{i:032x}", "path": f"/music/{i}.ogg", "size": 1, "mtime_ns": 1,
                   "title": " ".join(words[:2]).title(), "artist": f"Artist {i % 997}", "album": f"Album {i % 5003}",
                   "genre": str(words[2]), "date": "", "comment": "", "licence": "", "split": "", "duration_s": 180.0,
                   "tags": [str(w) for w in words[3:]], "pseudo_tags": [], "audio": rng.standard_normal(200).astype(np.float32)}
            row["text"] = track_text(row)
            vector = rng.standard_normal(text_encoder.dim).astype(np.float32)
            row["text_vector"] = vector / np.linalg.norm(vector)
            rows.append(row)
        data = rows_to_arrow(rows)
        if table is None:
            table = connection.create_table(TABLE, data)
        else:
            table.add(data)
    info = {"format": 1, "encoder": "musicnn-mtt", "layer": 6, "weights_dir": None, "pseudo_tags": True,
            "text_encoder": text_encoder.name, "text_encoder_revision": text_encoder.revision}
    atomic_write_bytes(db / "index.json", json.dumps(info).encode())
    write_snapshot(db, table=table)  # what `mirkit index` ends with: rows, vectors, BM25 index


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-runtime", default="auto", choices=("auto", "onnxruntime", "torch"),
                        help="how queries are encoded (auto: ONNX Runtime when installed)")
    parser.add_argument("--keep", default=None, help="build the index here and keep it (default: a temp folder)")
    args = parser.parse_args()

    from mirkit.encoders.text import load_text_encoder
    from mirkit.retrieval.model import JointConfig, JointModel, save_model
    from mirkit.retrieval.search import SearchEngine

    torch.set_num_threads(min(2, os.cpu_count() or 2))
    text_encoder = load_text_encoder()
    root = Path(args.keep or tempfile.mkdtemp(prefix="mirkit-latency-"))
    db, model_dir = root / "lib", root / "model"
    started = time.perf_counter()
    if not (db / "index.json").is_file():
        build(db, args.tracks, text_encoder, args.seed)
    build_s = time.perf_counter() - started
    torch.manual_seed(args.seed)
    save_model(JointModel(JointConfig(audio_dim=200, text_dim=text_encoder.dim)), model_dir, text_state=None,
               extra={"index": {"encoder": "musicnn-mtt", "layer": 6}, "text_encoder_revision": text_encoder.revision,
                      "train": {"text_lora_rank": 0}})
    started = time.perf_counter()
    engine = SearchEngine(db, model=model_dir, text_encoder=text_encoder, text_runtime=args.text_runtime)
    open_s = time.perf_counter() - started
    rng = np.random.default_rng(args.seed + 1)
    queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))) + f" {i}" for i in range(args.queries)]
    engine.search("warm up", k=args.k)

    def timed(fn, items) -> np.ndarray:
        out = []
        for item in items:
            t0 = time.perf_counter()
            fn(item)
            out.append(time.perf_counter() - t0)
        return np.array(out) * 1000

    total = timed(lambda q: engine.search(q, k=args.k), queries)
    vectors = {q: engine.embed_query(q) for q in queries}
    retrieval = timed(lambda q: engine.search_embedded(q, vectors[q], k=args.k), queries)
    encode = timed(lambda q: engine.embed_query(q + " again"), queries)
    vector = engine.embed_query("calm piano")
    dense = timed(lambda q: engine.dense_space @ vector, queries)
    fts = timed(lambda q: engine.text_ranks(q, limit=100), queries)
    ids = [engine.rows[int(i)]["id"] for i in rng.integers(0, len(engine.rows), 50)]
    like = timed(lambda track: engine.like(track_id=track, k=args.k), ids)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    result = {"benchmark": "search_latency", "tracks": len(engine.rows), "queries": args.queries, "k": args.k,
              "p50_ms": round(float(np.percentile(total, 50)), 2), "p95_ms": round(float(np.percentile(total, 95)), 2),
              "retrieval_p50_ms": round(float(np.percentile(retrieval, 50)), 2),
              "retrieval_p95_ms": round(float(np.percentile(retrieval, 95)), 2),
              "text_encode_p50_ms": round(float(np.percentile(encode, 50)), 2),
              "dense_p50_ms": round(float(np.percentile(dense, 50)), 2),
              "fulltext_p50_ms": round(float(np.percentile(fts, 50)), 2),
              "like_p50_ms": round(float(np.percentile(like, 50)), 2), "target_p50_ms": 20.0,
              "build_s": round(build_s, 1), "open_s": round(open_s, 1), "threads": torch.get_num_threads(),
              "text_runtime": engine.text_encoder.runtime,
              "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    print(f"end to end: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms over {args.queries} queries at "
          f"{result['tracks']:,} tracks (queries encoded with {result['text_runtime']}); retrieval with the query embedded: p50 {result['retrieval_p50_ms']} ms "
          f"(encode {result['text_encode_p50_ms']} ms, dense {result['dense_p50_ms']} ms, full-text "
          f"{result['fulltext_p50_ms']} ms)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
