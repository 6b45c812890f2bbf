"""``mirkit data music`` cataloguing on a fake unpacked package (no network)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mirkit.data.library import collect, detect_licence, read_tags
from tests.conftest import sine


def _fake_fretsonfire(folder, bpm):
    import pretty_midi

    folder.mkdir(parents=True)
    for stem, freq in (("song", 220), ("guitar", 330)):
        sf.write(folder / f"{stem}.ogg", sine(freq, 2.0, 22050), 22050, format="OGG", subtype="VORBIS")
    midi = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    midi.instruments.append(pretty_midi.Instrument(0))
    midi.instruments[0].notes.append(pretty_midi.Note(velocity=90, pitch=60, start=0.0, end=1.0))
    midi.write(str(folder / "notes.mid"))
    (folder / "song.ini").write_text("[song]\nname = Test Song\nartist = Somebody\n")


def test_collect_catalogues_tags_licences_and_fretsonfire_tempo(tmp_path):
    pytest.importorskip("mutagen")
    from mutagen.oggvorbis import OggVorbis

    root = tmp_path / "lib"
    unpacked = root / "packages" / "fake-music"
    doc = unpacked / "usr/share/doc/fake-music"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Licensed under the Creative Commons Attribution-ShareAlike 3.0 licence.")
    music = unpacked / "usr/share/games/fake/music"
    music.mkdir(parents=True)
    sf.write(music / "battle_epic.ogg", sine(440, 1.0, 22050), 22050, format="OGG", subtype="VORBIS")
    sf.write(music / "calm.ogg", sine(220, 1.0, 22050), 22050, format="OGG", subtype="VORBIS")
    tagged = OggVorbis(music / "calm.ogg")
    tagged["title"], tagged["artist"], tagged["album"] = "Calm Waters", "A. Composer", "Game OST"
    tagged.save()
    (music / "readme.txt").write_text("not audio")
    sf.write(music / "jingle.ogg", sine(440, 0.2, 22050), 22050, format="OGG", subtype="VORBIS")  # too short
    effects = unpacked / "usr/share/games/fake/sounds"
    effects.mkdir(parents=True)
    sf.write(effects / "explosion.ogg", sine(110, 1.0, 22050), 22050, format="OGG", subtype="VORBIS")
    import zipfile

    sf.write(tmp_path / "in_zip.ogg", sine(330, 1.0, 22050), 22050, format="OGG", subtype="VORBIS")
    with zipfile.ZipFile(unpacked / "usr/share/games/fake/music.pk3", "w") as archive:
        archive.write(tmp_path / "in_zip.ogg", "sound/cdtracks/space-march.ogg")
        archive.writestr("../../escape.ogg", b"zip-slip attempt")  # never written outside the target
    _fake_fretsonfire(unpacked / "usr/share/games/fretsonfire/data/songs/x/test_song", bpm=150)

    tracks = collect(root, "fake-music", unpacked, min_track_s=0.5)
    by_title = {t.title: t for t in tracks}
    assert set(by_title) == {"Battle Epic", "Calm Waters", "Test Song", "Space March"}
    assert not (unpacked / "usr/share/escape.ogg").exists() and not (unpacked / "escape.ogg").exists()
    assert by_title["Calm Waters"].artist == "A. Composer" and by_title["Calm Waters"].album == "Game OST"
    assert all(t.licence == "CC-BY-SA-3.0" for t in tracks)
    song = by_title["Test Song"]
    assert song.labels["bpm"] == 150.0 and song.split == "test"  # real tempo charts are test-only
    beats = song.labels["beats"]  # the chart's beats (0.4 s apart at 150 BPM), checked against the mix's onsets
    assert len(beats) >= 2 and abs(beats[1] - beats[0] - 0.4) < 1e-3 and "beat_alignment" in song.labels
    mix, _ = sf.read(root / song.path)
    spectrum = np.abs(np.fft.rfft(mix if mix.ndim == 1 else mix.mean(axis=1)))
    peaks = np.argsort(spectrum)[-2:] * 22050 / len(mix)
    assert sorted(np.round(peaks / 10) * 10) == [220, 330]  # both stems are in the mix


def test_licence_detection_and_tag_fallback(tmp_path):
    assert detect_licence("GPL version 2 or later") == "GPL-2.0-or-later"
    assert detect_licence("nothing known") == "see the package's copyright file"
    path = tmp_path / "dark_forest-theme.wav"
    sf.write(path, sine(440, 0.2, 8000), 8000)
    assert read_tags(path)["title"] == "Dark Forest Theme"
