"""Load test of the search web API: N concurrent queries over loopback (issue #6: 200, zero errors, p95 reported).

Starts ``mirkit serve`` in its own process on a free port (an index you give with ``--db``, or a
synthetic one of ``--tracks`` rows built like ``benchmarks/search_latency.py``), waits until it
answers, then fires ``--concurrency`` distinct text queries at once (plus ``--like`` query-by-example
requests and audio fetches when the index has real files), all in flight together, with httpx.
Latency is measured per request from send to full response. JSON line last.

    python benchmarks/search_load.py --db runs/search/lib --model runs/search/model
    python benchmarks/search_load.py --tracks 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("calm epic battle forest night theme march swing brass rock guitar piano ambient dark light journey "
         "storm castle river dawn dusk hero village dance waltz folk strings choir drums bass organ flute").split()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _fire(base: str, paths: list[str]) -> tuple[list[float], list[str]]:
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def one(path: str) -> None:
            started = time.perf_counter()
            try:
                response = await client.get(path)
                await response.aread()
                if response.status_code != 200:
                    errors.append(f"{path}: HTTP {response.status_code}")
            except Exception as exc:  # counted, reported
                errors.append(f"{path}: {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one(path) for path in paths))
    return latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default=None, help="index folder (default: build a synthetic one)")
    parser.add_argument("--model", default=None)
    parser.add_argument("--tracks", type=int, default=10000, help="synthetic index size when --db is not given")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import httpx

    root = Path(tempfile.mkdtemp(prefix="mirkit-load-"))
    db = args.db
    if db is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from search_latency import build

        from mirkit.encoders.text import load_text_encoder

        db = str(root / "lib")
        build(Path(db), args.tracks, load_text_encoder(), args.seed)
    port = _free_port()
    command = [sys.executable, "-m", "mirkit.cli.main", "serve", "--db", db, "--port", str(port)]
    if args.model:
        command += ["--model", args.model]
    log_path = root / "server.log"
    server = subprocess.Popen(command, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while True:
            try:
                facets = httpx.get(base + "/api/facets", timeout=5).json()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"server did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        rng = np.random.default_rng(args.seed)
        queries = [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 4)))) + f" {i}" for i in range(args.concurrency)]
        paths = [f"/api/search?q={q.replace(' ', '+')}&k=10" for q in queries]
        ids = [hit["id"] for hit in httpx.get(base + "/api/search", params={"q": "music", "k": 20}).json()["results"]]
        mixed = list(paths)
        for i, track in enumerate(ids):  # some query-by-example requests in the same burst
            mixed[i * 7 % len(mixed)] = f"/api/like/{track}?k=10"
        real_audio = args.db is not None
        started = time.perf_counter()
        latencies, errors = asyncio.run(_fire(base, mixed))
        wall_s = time.perf_counter() - started
        audio_errors = []
        if real_audio:
            _, audio_errors = asyncio.run(_fire(base, [f"/audio/{track}" for track in ids]))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    ms = np.array(latencies) * 1000
    result = {"benchmark": "search_load", "tracks": facets["tracks"], "model": bool(facets["model"]),
              "concurrent_requests": len(mixed), "errors": len(errors) + len(audio_errors),
              "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
              "max_ms": round(float(ms.max()), 1), "wall_s": round(wall_s, 2),
              "audio_fetches": len(ids) if real_audio else 0, "cpus": os.cpu_count(),
              "machine": platform.processor() or platform.machine()}
    for error in (errors + audio_errors)[:10]:
        print("error:", error)
    print(f"{len(mixed)} concurrent requests: {result['errors']} errors, p50 {result['p50_ms']} ms, "
          f"p95 {result['p95_ms']} ms, all answered in {result['wall_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
