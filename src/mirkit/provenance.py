"""What a result was computed with: package versions, the machine (CPU model, cores, threads, GPU), the date."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def provenance() -> dict[str, object]:
    import importlib.metadata

    import torch

    from mirkit import __version__

    versions = {}
    for package in ("torch", "numpy", "scikit-learn", "librosa", "mir_eval", "transformers", "soundfile", "soxr"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"mirkit": __version__, "python": platform.python_version(), "versions": versions,
            "machine": {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.release()}",
                        "torch_threads": torch.get_num_threads(),
                        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


__all__ = ["provenance"]
