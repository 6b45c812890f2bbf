"""The Ray engine against the local engine of `mirkit extract`, on one machine, in the same run (issue #20).

Writes ``--files`` generated clips, extracts them into two fresh stores, first with the local engine
(worker-process decoding, batched windows), then with ``--engine ray`` on a local Ray instance with
``--actors`` actors (default: the machine's cores); reports audio seconds per second for both, the
ratio (target: Ray >= 0.9x local on CPU) and whether the stored arrays match to float tolerance.
Ray's start-up (the instance, actors importing torch and building the encoder) is inside its time,
as a user pays it. Prints one JSON line last.

    python benchmarks/ray_extract.py --encoder musicnn-mtt --files 200 --duration-s 30
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="musicnn-mtt")
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--actors", type=int, default=None)
    parser.add_argument("--batch-files", type=int, default=16)
    args = parser.parse_args()
    import ray

    from mirkit.features.extract import ExtractConfig, extract
    from mirkit.features.ray_engine import extract_ray
    from mirkit.features.store import FeatureStore

    rate = 22050
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "audio"
        folder.mkdir()
        rng = np.random.default_rng(0)
        t = np.arange(int(args.duration_s * rate)) / rate
        for i in range(args.files):
            f = 110 * 2 ** (rng.integers(0, 36) / 12)
            wave = sum(0.2 / h * np.sin(2 * np.pi * f * h * t) for h in range(1, 5)) + 0.01 * rng.standard_normal(t.size)
            sf.write(folder / f"clip{i:04d}.wav", wave.astype(np.float32), rate)
        config = ExtractConfig(encoder=args.encoder)
        started = time.perf_counter()
        local = extract(folder, store=Path(tmp) / "local", config=config, progress=False)
        local_s = time.perf_counter() - started
        cores = os.cpu_count() or 1
        started = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
        remote = extract_ray(folder, store=Path(tmp) / "ray", config=config, actors=args.actors or cores,
                             batch_files=args.batch_files, progress=False)
        ray_s = time.perf_counter() - started
        ray.shutdown()
        a, b = FeatureStore(Path(tmp) / "local").recipe(local.recipe), FeatureStore(Path(tmp) / "ray").recipe(remote.recipe)
        ids = sorted(local.item_ids.values())
        close = sorted(remote.item_ids.values()) == ids and all(
            np.allclose(a.read_pooled(k, ids), b.read_pooled(k, ids), rtol=1e-4, atol=1e-5) for k in local.recipe.layers)
    audio_s = args.files * args.duration_s
    result = {"benchmark": "ray_extract", "encoder": args.encoder, "files": args.files, "duration_s": args.duration_s,
              "local_audio_s_per_s": round(audio_s / local_s, 1), "ray_audio_s_per_s": round(audio_s / ray_s, 1),
              "ray_over_local": round(local_s / ray_s, 3), "target_ray_over_local": 0.9, "arrays_match": close,
              "actors": args.actors or cores, "local_computed": local.computed, "ray_computed": remote.computed,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": cores}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
