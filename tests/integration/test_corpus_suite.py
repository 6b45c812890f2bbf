"""Suite-level tests moved from ``tests/unit/test_corpus.py`` (they build the tiny suite): `mirkit data corpus`: provenance, duplicates, exclusions (suite pieces, reserved collections,"""

from __future__ import annotations

import numpy as np
import soundfile as sf

from mirkit.data.corpus import EXCLUDED_MUSIC21, music21_jobs, suite_pieces


def test_the_corpus_never_holds_suite_pieces_or_reserved_collections(tiny_suite, tmp_path):
    pieces = {job.piece for job in music21_jobs()}
    assert pieces and not pieces & suite_pieces(tiny_suite)
    folders = {p.removeprefix("music21:").split("/")[0] for p in pieces}
    assert not folders & {"bach", "airdsAirs", "oneills1850", "ryansMammoth"} and "cpebach" in folders
    essen = {p.split("/")[1].split(":")[0] for p in pieces if p.startswith("music21:essenFolksong/")}
    assert essen and essen <= {"han1", "han2"}  # never the European collections of the key task, nor irl
    assert {"bach", "airdsAirs", "oneills1850", "ryansMammoth"} <= set(EXCLUDED_MUSIC21)
    # a suite's own pieces are dropped when it is named, whatever their source
    mine = tmp_path / "mine"
    mine.mkdir()
    sf.write(mine / "a.wav", (0.3 * np.sin(np.arange(96000) / 10)).astype(np.float32), 24000)
    from mirkit.data.corpus import plan

    jobs, _ = plan(sources=[], packages=[], music_dir=tmp_path, add=[mine], seed=0,
                   exclude_pieces={f"user:{(mine / 'a.wav').resolve()}"})
    assert jobs == []
