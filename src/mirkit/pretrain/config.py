"""``PretrainConfig``: everything that defines a pretraining run (stored in ``run.json``; the command
line of ``mirkit pretrain`` is generated from it, so each default is written once, here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from mirkit.encoders.mel_config import MEL_PRESETS
from mirkit.errors import ConfigError

#: presets per --arch (mirkit.pretrain.backbones.MERT_PRESETS holds the mert shapes)
ARCH_PRESETS = {"mel": tuple(MEL_PRESETS), "mert": ("tiny", "small", "95m")}
from mirkit.options import check_choices, option

TARGETS = ("bestrq", "kmeans", "codec")


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of ``mirkit pretrain`` (facts behind the defaults: ``shared/PRETRAINING.md``)."""

    arch: str = option("mel", "mel: a transformer over log-mel patches, sized for CPUs; mert: HubertModel in "
                       "MERT's published layout (waveform front-end, 24 kHz)", choices=tuple(ARCH_PRESETS))
    preset: str = option("small", "model size: mel tiny|small|base, mert tiny|small|95m (tiny is for tests; 95m is "
                         "MERT-v1-95M's shape)", choices=tuple(dict.fromkeys(p for ps in ARCH_PRESETS.values() for p in ps)))
    init: str | None = option(None, "continue pretraining from a published checkpoint (--arch mert: mert-v1-95m or "
                              "mert-v1-330m, with --weights DIR)")
    weights: str | None = option(None, "folder with the --init checkpoint's config.json and weights")
    targets: str = option("bestrq", "bestrq: frozen random projection + codebook (MusicFM); kmeans: k-means of "
                          "log-mel + chroma fitted on the corpus (MERT-v0); codec: EnCodec's 8 codebooks (MERT-v1, "
                          "needs --codec-weights)", choices=TARGETS)
    codec_weights: str | None = option(None, "folder of the EnCodec 24 kHz checkpoint for --targets codec")
    codebooks: int = option(1, "BEST-RQ codebooks, each predicted by its own head")
    codebook_size: int = option(1024, "codes per BEST-RQ codebook")
    kmeans_clusters: int = option(256, "k-means clusters (--targets kmeans)")
    mask_prob: float = option(0.8, "masking probability (MERT 0.8)")
    mask_span: int = option(5, "masked span length in tokens (MERT 5)")
    cqt_weight: float = option(1.0, "weight of MERT's CQT reconstruction loss on masked tokens (0: off)")
    distill: str = option("", "distillation teachers and their loss weights, e.g. basic-pitch-note=1,crepe=0.5,"
                          "musicnn-tags=1 (teachers: basic-pitch-note, basic-pitch-onset, crepe, musicnn-tags, "
                          "musicnn-penultimate, chroma; their outputs are computed once through the feature store)")
    teacher_store: str | None = option(None, "feature store of the teachers' outputs (default CORPUS/teachers)")
    mix_prob: float = option(0.5, "in-batch noise mixing probability (MERT 0.5; 0: off)")
    steps: int = option(1000, "optimizer steps")
    batch_size: int = option(8, "crops per micro-batch")
    accumulate: int = option(1, "micro-batches per optimizer step")
    crop_s: float = option(5.0, "crop length in seconds (MERT 5)")
    learning_rate: float = option(5e-4, "peak learning rate (MERT 5e-4)", flag="lr")
    weight_decay: float = option(0.01, "AdamW weight decay")
    warmup_steps: int = option(100, "linear warm-up steps, then cosine decay")
    grad_clip: float = option(10.0, "gradient-norm clipping (MERT 10)")
    seed: int = option(0, "seeds the model, the crops, the masks and the mixing")
    checkpoint_every: int = option(200, "steps between checkpoints (resume state + an encoder folder)")
    max_bad_steps: int = option(5, "non-finite steps in a row before the run aborts")
    stats_crops: int = option(64, "crops used to fit the log-mel statistics (and k-means)")
    dropout: float | None = option(None, "the backbone's dropout (default: the preset's, 0.1); with 0 a torchrun "
                                   "job trains what one process trains, up to summation order")

    def validate(self) -> None:
        check_choices(self, what="mirkit pretrain")
        if self.preset not in ARCH_PRESETS[self.arch] and self.init is None:
            raise ConfigError(f"--preset {self.preset} is not a --arch {self.arch} size; choose one of "
                              f"{', '.join(ARCH_PRESETS[self.arch])}.")
        if self.targets == "codec" and not self.codec_weights:
            raise ConfigError("--targets codec needs EnCodec 24 kHz: download facebook/encodec_24khz where you have "
                              "internet (`huggingface-cli download facebook/encodec_24khz`) and pass --codec-weights "
                              "DIR, or use --targets bestrq (nothing to download).")
        if (self.init is None) != (self.weights is None):
            raise ConfigError("--init and --weights go together: --init mert-v1-95m --weights DIR (the checkpoint's "
                              "files, e.g. from `huggingface-cli download m-a-p/MERT-v1-95M`).")
        positive = ("codebooks", "codebook_size", "mask_span", "steps", "batch_size", "accumulate", "checkpoint_every",
                    "max_bad_steps", "stats_crops", "kmeans_clusters")
        bad = [f"{k}={getattr(self, k)}" for k in positive if getattr(self, k) < 1]
        bad += [f"{k}={getattr(self, k)}" for k in ("crop_s", "learning_rate", "grad_clip") if getattr(self, k) <= 0]
        bad += [f"{k}={getattr(self, k)}" for k in ("cqt_weight", "weight_decay", "warmup_steps") if getattr(self, k) < 0]
        if not 0 < self.mask_prob <= 1:
            bad.append(f"mask_prob={self.mask_prob}")
        if not 0 <= self.mix_prob <= 1:
            bad.append(f"mix_prob={self.mix_prob}")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            bad.append(f"dropout={self.dropout} (0 <= dropout < 1)")
        if self.batch_size < 2 and self.mix_prob > 0:
            bad.append(f"batch_size={self.batch_size} (in-batch mixing needs 2 or more; or --mix-prob 0)")
        if bad:
            raise ConfigError(f"pretrain settings out of range: {', '.join(bad)}.")
        if self.distill:
            from mirkit.pretrain.distill import parse_distill

            parse_distill(self.distill)

    @property
    def teachers(self) -> dict[str, float]:
        """``--distill`` as ``{teacher: weight}`` (empty without distillation)."""
        from mirkit.pretrain.distill import parse_distill

        return parse_distill(self.distill) if self.distill else {}

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> PretrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
