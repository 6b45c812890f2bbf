"""``train_search_model``: fit the joint text-audio space on an index with InfoNCE, evaluate on held-out tracks.

Splits: tracks keep the split of the suite they come from (``train``/``valid``/``test``, by piece);
other tracks are assigned by a hash of their id (deterministic, ``valid_fraction`` and
``test_fraction``). Training draws one caption per track per step (:mod:`mirkit.retrieval.captions`).
With the text encoder frozen (no LoRA), captions come from a bank drawn once: ``caption_bank``
captions per training track, sampled with the same sources and ratios and encoded by MiniLM in one
pass before the first epoch, so steps cost no text encoding (``caption_bank=0`` draws fresh
captions every step instead, as LoRA on the text tower always does). Early stopping watches the mean MRR over the validation query groups; the best weights are saved
and scored once on the test tracks (:mod:`mirkit.retrieval.evaluate`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mirkit.errors import ConfigError, TrainingError
from mirkit.files import atomic_write_json, atomic_write_text, stable_fraction
from mirkit.retrieval.captions import CaptionConfig, CaptionSampler
from mirkit.retrieval.evaluate import (
    QueryGroup,
    build_queries,
    evaluate_systems,
    format_table,
    hybrid_scores,
    no_label_text,
)
from mirkit.retrieval.index import load_tracks
from mirkit.retrieval.model import (
    JointConfig,
    JointModel,
    apply_text_lora,
    info_nce,
    save_model,
)
from mirkit.retrieval.snapshot import read_index_info

log = logging.getLogger(__name__)



@dataclass
class SearchTrainConfig:
    dim: int = 128
    hidden: int = 512
    epochs: int = 200  # at most; early stopping on validation
    patience: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 0
    text_lora_rank: int = 0  # > 0: LoRA (peft) on MiniLM's query/value projections, trained with the towers
    text_lr: float = 1e-4
    caption_bank: int = 16  # captions pre-drawn and pre-encoded per training track; 0 = draw fresh each step
    valid_fraction: float = 0.1
    test_fraction: float = 0.1

    def validate(self) -> None:
        for name in ("dim", "hidden", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 1.")
        if self.caption_bank < 0:
            raise ConfigError(f"caption_bank={self.caption_bank} must be >= 0 (0 draws fresh captions every step).")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size={self.batch_size}: InfoNCE needs at least 2 tracks per batch.")
        if not (0 <= self.valid_fraction < 1 and 0 <= self.test_fraction < 1 and self.valid_fraction + self.test_fraction < 1):
            raise ConfigError(f"valid_fraction={self.valid_fraction} and test_fraction={self.test_fraction} must be in "
                              "[0, 1) and sum to less than 1.")


class CaptionBank:
    """Captions drawn once per training track and encoded once: ``pick`` gives a batch its texts and vectors."""

    def __init__(self, texts: list[str], vectors: np.ndarray, choices: dict[int, np.ndarray], encode_s: float) -> None:
        self.texts, self.vectors, self.choices, self.encode_s = texts, torch.from_numpy(vectors), choices, encode_s

    @classmethod
    def draw(cls, sampler: CaptionSampler, tracks: dict[int, dict[str, object]], *, per_track: int, seed: int,
             text_encoder, progress: bool = True, chunk: int = 512) -> CaptionBank:
        from tqdm.auto import tqdm

        rng = np.random.default_rng([seed, 1])  # its own stream: the training order does not depend on the bank
        drawn = {i: [sampler.sample(track, rng) for _ in range(per_track)] for i, track in tracks.items()}
        texts = sorted(dict.fromkeys(t for captions in drawn.values() for t in captions), key=len)  # less padding
        position = {t: j for j, t in enumerate(texts)}
        started = time.perf_counter()
        parts = []
        for start in tqdm(range(0, len(texts), chunk), desc="caption bank", unit="chunk", disable=not progress or None):
            parts.append(text_encoder.encode(texts[start:start + chunk]))
        text_encoder.clear_memo()  # the bank holds them; the memo would only duplicate them
        vectors = np.concatenate(parts) if parts else np.zeros((0, text_encoder.dim), np.float32)
        choices = {i: np.array([position[t] for t in captions]) for i, captions in drawn.items()}
        log.info("caption bank: %d captions per track, %d distinct, encoded in %.1f s", per_track, len(texts),
                 time.perf_counter() - started)
        return cls(texts, vectors, choices, round(time.perf_counter() - started, 1))

    def pick(self, batch, rng: np.random.Generator) -> tuple[list[str], torch.Tensor]:
        """One caption per track of ``batch`` (uniform over the track's drawn captions)."""
        rows = [int(self.choices[int(i)][rng.integers(len(self.choices[int(i)]))]) for i in batch]
        return [self.texts[j] for j in rows], self.vectors[rows]


def split_of(row: dict[str, object], *, valid_fraction: float, test_fraction: float) -> str:
    split = str(row.get("split") or "")
    if split in ("train", "valid", "test"):
        return split
    u = stable_fraction(str(row["id"]))
    return "test" if u < test_fraction else "valid" if u < test_fraction + valid_fraction else "train"


def _lora_state(text_encoder) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(text_encoder.model)


def train_search_model(*, db: str | Path, out: str | Path, config: SearchTrainConfig | None = None,
                       captions: CaptionConfig | None = None, text_encoder=None, progress: bool = True) -> dict[str, object]:
    """Train, select on validation, test once; writes ``out/`` (model, config, metrics.json, metrics.md)."""
    # A little over 60 lines: the set-up, the epoch loop with its early stopping and the summary read
    # top to bottom here; each step is a helper below.
    from tqdm.auto import tqdm

    started = time.perf_counter()
    config = config or SearchTrainConfig()
    config.validate()
    captions = captions or CaptionConfig()
    info = read_index_info(db)
    rows = load_tracks(db)
    if text_encoder is None:
        from mirkit.encoders.text import load_text_encoder

        text_encoder = load_text_encoder()
    if text_encoder.revision != info.get("text_encoder_revision"):
        raise ConfigError(f"index {db} was built with text encoder {info.get('text_encoder_revision')}, not "
                          f"{text_encoder.revision}; rebuild it or pass the same text encoder.")
    sampler = CaptionSampler(rows, captions)
    splits, trainable = _splits(rows, sampler, config, db=db)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    audio = np.asarray([r["audio"] for r in rows], dtype=np.float32)
    model, optimizer = _model_and_optimizer(audio, trainable, text_encoder, config)
    audio_t = torch.from_numpy(audio)
    bank = None
    if config.caption_bank > 0 and config.text_lora_rank > 0:
        log.info("caption bank off: LoRA trains the text encoder, so captions are encoded at every step")
    elif config.caption_bank > 0:
        bank = CaptionBank.draw(sampler, {i: rows[i] for i in trainable}, per_track=config.caption_bank,
                                seed=config.seed, text_encoder=text_encoder, progress=progress)
    valid_groups = build_queries([rows[i] for i in splits["valid"]], similar=sampler.similar)
    best = (-np.inf, -1, None, None)
    history = []
    bar = tqdm(range(config.epochs), desc="search train", unit="epoch", disable=not progress or None)
    for epoch in bar:
        texts_of = (lambda batch: bank.pick(batch, rng)) if bank is not None else (
            lambda batch: _fresh_captions(batch, rows, sampler, rng, text_encoder, config))
        losses = _train_epoch(model, text_encoder, optimizer, audio_t, rng.permutation(trainable), texts_of,
                              config=config, epoch=epoch)
        score = _validation_score(model, text_encoder, audio_t, splits["valid"], valid_groups)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)) if losses else None, "valid_mrr": score})
        bar.set_postfix(loss=f"{history[-1]['loss']:.3f}", valid=f"{score:.3f}")
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in model.state_dict().items()},
                    {k: v.clone() for k, v in _lora_state(text_encoder).items()} if config.text_lora_rank > 0 else None)
        elif epoch - best[1] >= config.patience:
            break
    bar.close()
    _restore_best(model, text_encoder, best)
    results = evaluate_systems(build_queries([rows[i] for i in splits["test"]], similar=sampler.similar),
                               _systems(model, text_encoder, audio_t, splits["test"], rows, db))
    summary = {"index": {k: info.get(k) for k in ("encoder", "layer", "weights_dir", "pseudo_tags")}, "db": str(db),
               "text_encoder": text_encoder.name, "text_encoder_revision": text_encoder.revision,
               "train": asdict(config), "captions": asdict(captions),
               "tracks": {name: len(ids) for name, ids in splits.items()}, "best_epoch": best[1],
               "caption_bank": {"per_track": config.caption_bank if bank is not None else 0,
                                "distinct_captions": len(bank.texts) if bank is not None else None,
                                "encode_s": bank.encode_s if bank is not None else None},
               "valid_mrr": best[0], "epochs_run": len(history), "wall_s": round(time.perf_counter() - started, 1),
               "test": results}
    out = Path(out)
    save_model(model, out, extra=summary, text_state=best[3])
    atomic_write_json(out / "history.json", history, indent=None)
    atomic_write_text(out / "metrics.md", f"# Search model {out}\n\nIndex `{db}` (encoder {info['encoder']}, layer "
                                          f"{info['layer']}); test tracks: {len(splits['test'])}.\n\n"
                                          f"{format_table(results)}\n")
    return summary


def _model_and_optimizer(audio: np.ndarray, trainable: list[int], text_encoder,
                         config: SearchTrainConfig) -> tuple[JointModel, torch.optim.AdamW]:
    """The joint model (audio standardised on the training tracks) and AdamW over it, plus LoRA on the
    text encoder when ``text_lora_rank > 0`` (the text encoder is frozen otherwise)."""
    model = JointModel(JointConfig(audio_dim=audio.shape[1], text_dim=text_encoder.dim, dim=config.dim,
                                   hidden=config.hidden))
    model.set_standardisation(audio[trainable])
    groups = [{"params": model.parameters(), "lr": config.lr}]
    if config.text_lora_rank > 0:
        apply_text_lora(text_encoder, config.text_lora_rank)
        groups.append({"params": [p for p in text_encoder.parameters() if p.requires_grad], "lr": config.text_lr})
    else:
        text_encoder.requires_grad_(False)
    return model, torch.optim.AdamW(groups, weight_decay=config.weight_decay)


def _restore_best(model: JointModel, text_encoder, best: tuple) -> None:
    """The best epoch's towers (and text LoRA weights), in eval mode, with the text memo cleared."""
    model.load_state_dict(best[2])
    if best[3] is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(text_encoder.model, best[3])
    model.eval()
    text_encoder.eval()
    text_encoder.clear_memo()


def _splits(rows: list[dict], sampler: CaptionSampler, config: SearchTrainConfig, *,
            db: str | Path) -> tuple[dict[str, list[int]], list[int]]:
    """Row indices per split, and the training rows that have a caption source; errors when a split is empty."""
    splits = {name: [i for i, r in enumerate(rows) if split_of(r, valid_fraction=config.valid_fraction,
                                                                  test_fraction=config.test_fraction) == name]
              for name in ("train", "valid", "test")}
    trainable = [i for i in splits["train"] if sampler.sources(rows[i])]
    if len(trainable) < 2:
        raise ConfigError(f"index {db} has {len(trainable)} training tracks with a caption source; training needs at "
                          "least 2 (tracks need tags, pseudo-tags, metadata, similar artists or free captions).")
    for name in ("valid", "test"):
        if not splits[name]:
            raise ConfigError(f"index {db} has no {name} tracks; raise --{name}-fraction or index more music.")
    return splits, trainable


def _fresh_captions(batch, rows: list[dict], sampler: CaptionSampler, rng: np.random.Generator, text_encoder,
                    config: SearchTrainConfig) -> tuple[list[str], torch.Tensor]:
    """One caption per track drawn now, and its text features (through the LoRA-trained encoder when there is one)."""
    texts = [sampler.sample(rows[i], rng) for i in batch]
    features = text_encoder(texts) if config.text_lora_rank > 0 else torch.from_numpy(text_encoder.encode(texts))
    return texts, features


def _train_epoch(model: JointModel, text_encoder, optimizer, audio_t: torch.Tensor, order, texts_of, *,
                 config: SearchTrainConfig, epoch: int) -> list[float]:
    """One pass over the training tracks in ``order``; returns the batch losses."""
    model.train()
    text_encoder.train(config.text_lora_rank > 0)
    losses = []
    for start in range(0, len(order), config.batch_size):
        batch = order[start:start + config.batch_size]
        if len(batch) < 2:
            continue
        texts, text_features = texts_of(batch)
        same = torch.tensor([[a == b for b in texts] for a in texts])
        loss = info_nce(model.embed_audio(audio_t[batch]), model.embed_text(text_features), model.scale(), same)
        if not torch.isfinite(loss):
            raise TrainingError(f"non-finite InfoNCE loss at epoch {epoch}; lower --lr (now {config.lr}).")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def _validation_score(model, text_encoder, audio_t, candidates: list[int], groups: list[QueryGroup]) -> float:
    model.eval()
    text_encoder.eval()
    audio = model.embed_audio(audio_t[candidates])
    scores = []
    for group in groups:
        if group.graded:
            continue
        text = model.embed_text(_encode(text_encoder, group.queries))
        from mirkit.metrics.retrieval import mean_reciprocal_rank

        scores.append(mean_reciprocal_rank((text @ audio.T).numpy(), group.relevance))
    return float(np.mean(scores)) if scores else 0.0


def _encode(text_encoder, texts: list[str]) -> torch.Tensor:
    from mirkit.encoders.text import TextEncoder

    if isinstance(text_encoder, TextEncoder) and any(p.requires_grad for p in text_encoder.parameters()):
        return text_encoder(texts).detach()  # LoRA is training: the memo would hold stale vectors
    return torch.from_numpy(text_encoder.encode(texts))


def _systems(model, text_encoder, audio_t, candidates: list[int], rows, db):
    from mirkit.retrieval.snapshot import read_snapshot

    snapshot = read_snapshot(db)
    with torch.no_grad():
        audio = model.embed_audio(audio_t[candidates]).numpy()
    text_vectors = np.asarray([rows[i]["text_vector"] for i in candidates], dtype=np.float32)
    plain = text_encoder.encode([no_label_text(rows[i]) for i in candidates])

    def joint(queries: list[str]) -> np.ndarray:
        with torch.no_grad():
            return model.embed_text(torch.from_numpy(text_encoder.encode(queries))).numpy() @ audio.T

    def fts(query: str, limit: int) -> list[str]:
        ranks = snapshot.full_text.ranks(query, limit=limit)
        return [str(snapshot.rows[row]["id"]) for row in sorted(ranks, key=ranks.get)]

    return {"model": joint,
            "hybrid": lambda queries: hybrid_scores(joint(queries), queries, fts, [rows[i] for i in candidates]),
            "text": lambda queries: text_encoder.encode(queries) @ text_vectors.T,
            "text-no-labels": lambda queries: text_encoder.encode(queries) @ plain.T}
