"""The ground floor: atomic writes, hashing and JSON-lines files."""

from __future__ import annotations

import hashlib

import pytest

from mirkit.errors import ConfigError
from mirkit.files import (
    append_jsonl,
    atomic_write_json,
    iter_jsonl,
    read_jsonl,
    sha256_file,
    sha256_files,
    stable_fraction,
    write_jsonl,
)


def test_atomic_write_leaves_no_temporary_file_and_replaces(tmp_path):
    path = tmp_path / "deep" / "a.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": 2})
    assert path.read_text() == '{\n  "x": 2\n}' and [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_hashes_equal_hashlib_on_files_larger_than_a_chunk(tmp_path):
    data = bytes(range(256)) * 20000  # 5 MB: more than one 4 MiB read
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(b"tail")
    assert sha256_file(tmp_path / "a") == hashlib.sha256(data).hexdigest()
    assert sha256_files([tmp_path / "a", tmp_path / "b"]) == hashlib.sha256(data + b"tail").hexdigest()
    assert 0 <= stable_fraction("piece-1") < 1 and stable_fraction("piece-1") == stable_fraction("piece-1")
    assert stable_fraction("piece-1") != stable_fraction("piece-2")


def test_jsonl_round_trip_and_a_torn_last_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    write_jsonl(path, [{"a": 1}, {"a": 2}])
    append_jsonl(path, {"a": 3})
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}, {"a": 3}]
    with open(path, "a") as handle:
        handle.write('{"a": 4, "b')  # a crash mid-append
    skipped = []
    assert [r["a"] for _, r in iter_jsonl(path, strict=False, on_skip=lambda n, line: skipped.append(n))] == [1, 2, 3]
    assert skipped == [4]
    with pytest.raises(ConfigError, match=r"rows.jsonl:4: not valid JSON"):
        read_jsonl(path)
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    with pytest.raises(ConfigError, match=r"list.jsonl:1: expected a JSON object, got list"):
        read_jsonl(tmp_path / "list.jsonl")
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_safe_stem_keeps_one_path_component_and_the_old_spelling_of_twins():
    from mirkit.files import safe_stem

    assert safe_stem("random:mirkit-mel-small") == "random_mirkit-mel-small"  # as results were named before
    assert safe_stem("runs/pt/final") == "runs_pt_final" and "/" not in safe_stem("/abs/../x y")
    assert safe_stem("logmel") == "logmel"


def test_a_private_numba_cache_takes_what_cache_true_functions_compile(tmp_path):
    """Worker processes get numba caches of their own (concurrent writes to librosa's shared cache corrupted it)."""
    import subprocess
    import sys

    (tmp_path / "jitted.py").write_text("import numba\n\n@numba.njit(cache=True)\ndef plus_one(x):\n    return x + 1\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from mirkit.files import private_numba_cache; "
            "print(private_numba_cache(sys.argv[2])); import jitted; assert jitted.plus_one(1) == 2")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(tmp_path / "numba")], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out.startswith(str(tmp_path / "numba"))
    assert list((tmp_path / "numba").rglob("*.nbi")) and not list(tmp_path.glob("__pycache__/*.nbi"))


def test_a_folder_holding_a_manifest_is_read_as_that_manifest(tmp_path, audio_dir):
    import json

    from mirkit.features.inputs import manifest_of_task_folder, scan_inputs

    task = tmp_path / "beat"  # a suite's task folder: the manifest points at audio in another folder
    task.mkdir()
    listed = sorted(audio_dir.glob("*.wav"))[:2]
    (task / "manifest.jsonl").write_text("".join(json.dumps({"path": f"../audio/{p.name}"}) + "\n" for p in listed))
    assert scan_inputs(task) == ([], [(str(task / "manifest.jsonl"), "not_audio", scan_inputs(task)[1][0][2])])
    paths, skipped = scan_inputs(manifest_of_task_folder(task))
    assert [str(p) for p in paths] == [str(task / ".." / "audio" / p.name) for p in listed] and skipped == []
    assert manifest_of_task_folder(audio_dir) == audio_dir  # a plain folder is scanned as it is
