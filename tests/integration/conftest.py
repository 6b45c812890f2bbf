"""Fixtures of the integration tier: whole suites built in code (never downloaded)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory) -> Path:
    """The ``tiny`` benchmark suite (templates, TimGM6mb), built once per session; treat it as read-only."""
    from mirkit.data.suite import build_suite

    root = tmp_path_factory.mktemp("tiny-suite")
    build_suite(suite="tiny", out_dir=root, soundfonts="timgm6mb", mma="off", renderers="tinysoundfont", progress=False, workers=2)
    return root
