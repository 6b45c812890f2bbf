"""Captions for training the joint text-audio model, TTMR++-style.

Each training step draws, per track, a caption made of phrases from a random non-empty subset of
the caption sources the track has:

- ``tags``: a random non-empty subset of its tags (suite labels; musicnn pseudo-tags when it has
  no labels), shuffled, in a random template ("a rock track with guitar, drums");
- ``metadata``: a random non-empty subset of title / artist / album in a template
  ("{title} by {artist} from {album}", "music by {artist}", ...);
- ``artist``: "similar to {B}" / "music like {B}" for an artist B listed as similar to the track's
  artist in an artist-similarity file (JSON ``{artist: [similar artists]}``);
- ``free``: one of the track's free-text captions (JSONL rows ``{"path" | "id": ..., "caption": ...}``).

How many sources go into one caption is uniform over 1..(sources the track has); which ones is
drawn without replacement with probabilities proportional to :attr:`CaptionConfig.ratios`
(a ratio of 0 turns a source off). Everything is drawn from the generator passed in, so a seed
fixes the captions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mirkit.errors import ConfigError
from mirkit.files import iter_jsonl

SOURCES = ("tags", "metadata", "artist", "free")
#: Suite tags that need a noun to read as a phrase.
TAG_PHRASES = {"slow": "slow tempo", "medium": "medium tempo", "fast": "fast tempo", "sparse": "sparse arrangement",
               "dense": "dense arrangement", "major": "major key", "minor": "minor key", "drums": "drums"}
_TAG_TEMPLATES = ("{tags}", "{tags} music", "a track with {tags}", "music with {tags}", "{tags} song")
_METADATA_TEMPLATES = {
    ("title",): ("{title}", "the track {title}", "a song called {title}"),
    ("artist",): ("music by {artist}", "{artist}", "a track by {artist}"),
    ("album",): ("from the album {album}", "{album}"),
    ("artist", "title"): ("{title} by {artist}", "{artist} - {title}"),
    ("album", "title"): ("{title} from {album}",),
    ("album", "artist"): ("{artist}, {album}", "music by {artist} from {album}"),
    ("album", "artist", "title"): ("{title} by {artist} from {album}",),
}
_ARTIST_TEMPLATES = ("similar to {artist}", "music like {artist}", "sounds like {artist}")


def tag_phrase(tag: str) -> str:
    return TAG_PHRASES.get(tag, tag)


@dataclass
class CaptionConfig:
    """Sampling ratios per source (relative; 0 = off) and the optional side files."""

    ratios: dict[str, float] = field(default_factory=lambda: {"tags": 1.0, "metadata": 1.0, "artist": 1.0, "free": 1.0})
    artist_similarity: str | None = None  # JSON {artist: [similar artists]}
    free_captions: str | None = None  # JSONL {"path" | "id": ..., "caption": ...}

    def validate(self) -> None:
        unknown = sorted(set(self.ratios) - set(SOURCES))
        if unknown:
            raise ConfigError(f"caption sources {unknown} are unknown; expected some of {list(SOURCES)}.")
        bad = {k: v for k, v in self.ratios.items() if not (v >= 0 and np.isfinite(v))}
        if bad:
            raise ConfigError(f"caption ratios {bad} must be finite and >= 0.")
        if not any(self.ratios.get(s, 0) > 0 for s in SOURCES):
            raise ConfigError(f"all caption ratios are 0 ({self.ratios}); give at least one source a positive ratio.")


def parse_ratios(text: str) -> dict[str, float]:
    """``"tags=2,metadata=1,artist=0.5"`` -> ratios (sources not named get 0)."""
    ratios = {source: 0.0 for source in SOURCES}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in SOURCES or not value:
            raise ConfigError(f"--captions entry {part!r} must be SOURCE=RATIO with SOURCE in {list(SOURCES)}, "
                              "e.g. --captions tags=2,metadata=1.")
        try:
            ratios[name] = float(value)
        except ValueError:
            raise ConfigError(f"--captions ratio {value!r} for {name!r} is not a number.") from None
    return ratios


def load_artist_similarity(path: str | Path) -> dict[str, list[str]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"artist-similarity file {path}: {exc}. Expected JSON {{artist: [similar artists]}}.") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(a, str) for a in v) for v in data.values()):
        raise ConfigError(f"artist-similarity file {path} must be a JSON object mapping each artist to a list of artist names.")
    return {str(k): list(v) for k, v in data.items()}


def load_free_captions(path: str | Path, tracks: Sequence[Mapping[str, object]]) -> dict[str, list[str]]:
    """Free captions per track id; rows name a track by ``id`` or by ``path`` (absolute or relative to the file)."""
    by_path = {str(t["path"]): str(t["id"]) for t in tracks}
    ids = set(by_path.values())
    captions: dict[str, list[str]] = {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"free-caption file {path} does not exist; pass a JSONL file of "
                          "{\"id\" or \"path\": ..., \"caption\": ...} rows.")
    for number, row in iter_jsonl(path):
        if "caption" not in row:
            raise ConfigError(f"{path}:{number}: expected {{\"id\" or \"path\": ..., \"caption\": ...}}, got "
                              f"{json.dumps(row)[:80]!r}.")
        caption = str(row["caption"]).strip()
        track = row.get("id")
        if track not in ids and row.get("path") is not None:
            track = by_path.get(str((path.parent / str(row["path"])).resolve()))
        if track in ids and caption:
            captions.setdefault(str(track), []).append(caption)
    return captions


class CaptionSampler:
    """Draws captions for tracks (rows of the index) from their available sources."""

    def __init__(self, tracks: Sequence[Mapping[str, object]], config: CaptionConfig) -> None:
        config.validate()
        self.config = config
        self.similar = load_artist_similarity(config.artist_similarity) if config.artist_similarity else {}
        self.free = load_free_captions(config.free_captions, tracks) if config.free_captions else {}
        self.tracks = {str(t["id"]): t for t in tracks}

    def tags(self, track: Mapping[str, object]) -> list[str]:
        return list(track.get("tags") or []) or list(track.get("pseudo_tags") or [])

    def sources(self, track: Mapping[str, object]) -> list[str]:
        """The sources this track can draw from (with a positive ratio)."""
        have = {"tags": bool(self.tags(track)),
                "metadata": any(track.get(k) for k in ("title", "artist", "album")),
                "artist": bool(self.similar.get(str(track.get("artist") or ""))),
                "free": bool(self.free.get(str(track["id"])))}
        return [s for s in SOURCES if have[s] and self.config.ratios.get(s, 0.0) > 0]

    def sample(self, track: Mapping[str, object], rng: np.random.Generator) -> str:
        sources = self.sources(track)
        if not sources:
            return str(track.get("title") or track["id"])
        count = int(rng.integers(1, len(sources) + 1))
        weights = np.array([self.config.ratios[s] for s in sources], dtype=np.float64)
        chosen = rng.choice(len(sources), size=count, replace=False, p=weights / weights.sum())
        return ", ".join(self._phrase(sources[i], track, rng) for i in sorted(chosen))

    def _phrase(self, source: str, track: Mapping[str, object], rng: np.random.Generator) -> str:
        if source == "tags":
            tags = self.tags(track)
            subset = rng.permutation(len(tags))[:int(rng.integers(1, len(tags) + 1))]
            words = ", ".join(tag_phrase(tags[i]) for i in subset)
            return _TAG_TEMPLATES[int(rng.integers(len(_TAG_TEMPLATES)))].format(tags=words)
        if source == "metadata":
            present = [k for k in ("title", "artist", "album") if track.get(k)]
            subset = tuple(sorted(present[i] for i in rng.permutation(len(present))[:int(rng.integers(1, len(present) + 1))]))
            templates = _METADATA_TEMPLATES[subset]
            return templates[int(rng.integers(len(templates)))].format(**{k: track[k] for k in subset})
        if source == "artist":
            similar = self.similar[str(track["artist"])]
            template = _ARTIST_TEMPLATES[int(rng.integers(len(_ARTIST_TEMPLATES)))]
            return template.format(artist=similar[int(rng.integers(len(similar)))])
        options = self.free[str(track["id"])]
        return options[int(rng.integers(len(options)))]
