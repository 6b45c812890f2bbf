"""Source separation for ``mirkit boost --model open-unmix``: spectrogram data, loss, decoding and scores.

The suite's ``separation`` task holds mixes with their ``drums``, ``bass`` and ``other`` stems
(:mod:`mirkit.data.stems`). A separation model sees the mix's log-magnitude STFT (``log1p |X|``,
1024-point Hann window, hop 512 at 22.05 kHz: 43 frames/s, 513 bins) and predicts one soft mask per
stem and bin; a stem's estimate is its mask times the mix's complex STFT, inverted (the mix phase,
as Open-Unmix does without its Wiener post-filter). Training minimises the squared error between
masked and true stem magnitudes, per crop divided by the mix's energy so that quiet and loud clips
weigh alike. Scores are BSS Eval's SDR (``fast_bss_eval``, 512-tap distortion filters, as BSS Eval
v4 uses) and SI-SDR per stem and clip, averaged; a stem that is silent in a clip is left out of that
clip's scores. The validation passes during training (best step, early stop) use SI-SDR alone, 30x
cheaper; the final validation and test scores have both, the SDR as headline. Two references need no training: HPSS (librosa's median-filtering harmonic/percussive
split: percussive -> drums, harmonic below a cutoff chosen on the validation split -> bass, the rest
-> other) and the ideal ratio masks (an upper bound for any mask of the mix's magnitude).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mirkit.boost.data import BoostClip, BoostData
from mirkit.data.manifest import SPLITS, read_manifest
from mirkit.data.stems import STEMS
from mirkit.errors import ConfigError

SAMPLE_RATE = 22050
N_FFT = 1024
HOP = 512
BINS = N_FFT // 2 + 1
HPSS_CUTOFFS_HZ = (100.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1200.0)
_SILENT = 1e-10  # mean power below which a reference stem counts as silent


def read_audio(path: str | Path) -> np.ndarray:
    """Mono float32 at :data:`SAMPLE_RATE`, decoded and resampled by mirkit's loader."""
    from mirkit.audio import load

    return load(path, sample_rate=SAMPLE_RATE)[0]


def mix_input(spec: np.ndarray) -> np.ndarray:
    """The model's input frames ``log1p |X|`` of a mix's complex STFT."""
    return np.log1p(np.abs(spec)).astype(np.float32)


def stft(wave: np.ndarray) -> np.ndarray:
    """Complex ``(frames, bins)`` STFT; frame k is centred at ``k * HOP`` samples."""
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), N_FFT, HOP,
                      window=torch.hann_window(N_FFT), center=True, return_complex=True)
    return spec.T.numpy()


def istft(spec: np.ndarray, *, samples: int) -> np.ndarray:
    """The inverse of :func:`stft` for ``(..., frames, bins)``, ``samples`` long."""
    tensor = torch.from_numpy(np.ascontiguousarray(np.swapaxes(spec, -1, -2)))
    return torch.istft(tensor, N_FFT, HOP, window=torch.hann_window(N_FFT), center=True, length=samples).numpy()


def load_separation(task_dir: Path, *, only: tuple[str, ...] = SPLITS, progress: bool = True) -> BoostData:
    """:class:`~mirkit.boost.data.BoostData` of a separation task: per clip the input ``log1p |X|``
    ``(frames, bins)`` and the target ``(frames, 1 + stems, bins)``: the mix magnitude, then each stem's
    (float16). Clips whose stems are missing or of another length are skipped with their reason."""
    from tqdm.auto import tqdm

    manifest = task_dir / "manifest.jsonl"
    skipped: list[dict[str, str]] = []
    splits: dict[str, list] = {s: [] for s in only}
    entries = [e for e in read_manifest(manifest) if e.split in only]
    for entry in tqdm(entries, desc=f"stft {task_dir.name}", unit="clip", disable=not progress or None):
        path = Path(entry.path) if Path(entry.path).is_absolute() else manifest.parent / entry.path
        stems = entry.labels.get("stems")
        if not isinstance(stems, dict) or sorted(stems) != sorted(STEMS):
            skipped.append({"path": entry.path, "reason": "bad_labels",
                            "message": f"stems {stems!r}: expected a file for each of {list(STEMS)}"})
            continue
        stem_paths = {name: Path(p) if Path(p).is_absolute() else manifest.parent / p for name, p in stems.items()}
        missing = [name for name, p in stem_paths.items() if not p.is_file()]
        if missing or not path.is_file():
            skipped.append({"path": entry.path, "reason": "missing_file",
                            "message": f"missing {'the mix' if not path.is_file() else 'stems ' + ', '.join(missing)}"})
            continue
        mix = read_audio(path)
        references = [read_audio(stem_paths[name]) for name in STEMS]
        if any(len(r) != len(mix) for r in references):
            skipped.append({"path": entry.path, "reason": "bad_labels",
                            "message": f"stem lengths {[len(r) for r in references]} differ from the mix's {len(mix)}"})
            continue
        spec = stft(mix)
        if len(spec) < 2:
            skipped.append({"path": entry.path, "reason": "too_short", "message": f"{len(spec)} STFT frame(s)"})
            continue
        magnitude = np.abs(spec)
        target = np.stack([magnitude] + [np.abs(stft(r)) for r in references], axis=1).astype(np.float16)
        times = np.arange(len(spec)) * HOP / SAMPLE_RATE
        labels = {"stems": {name: str(p) for name, p in stem_paths.items()}}
        splits[entry.split].append(BoostClip(str(path), entry.piece, mix_input(spec), times,
                                             target, labels, entry.duration_s))
    for split, clips in splits.items():
        if not clips:
            raise ConfigError(f"task {task_dir.name!r} has no usable {split} clips ({len(skipped)} skipped, e.g. "
                              f"{skipped[0] if skipped else '-'}); rebuild it with `mirkit data build`.")
    return BoostData(splits, SAMPLE_RATE / HOP, BINS, "stft", skipped)


def separation_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked-magnitude squared error: ``logits (batch, frames, stems x bins)``, ``target (batch, frames,
    1 + stems, bins)``, ``mask (batch, frames)``; each crop's error divided by its mix energy."""
    batch, frames, _ = logits.shape
    masks = torch.sigmoid(logits).view(batch, frames, target.shape[2] - 1, target.shape[3])
    error = ((masks * target[:, :, :1] - target[:, :, 1:]) ** 2).mean(dim=(2, 3))
    weight = mask.to(error.dtype)
    energy = ((target[:, :, 0] ** 2).mean(dim=2) * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1)
    per_crop = (error * weight).sum(dim=1) / weight.sum(dim=1).clamp_min(1) / energy.clamp_min(1e-8)
    return per_crop.mean()


def estimates(masks: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """``(stems, samples)`` waveforms of ``masks (frames, stems x bins)`` applied to ``mix``'s STFT."""
    spec = stft(mix)
    stems = masks.reshape(len(spec), -1, BINS).transpose(1, 0, 2)
    return istft(stems * spec[None], samples=len(mix))


def score_clips(paths: list[str], labels: list[dict], masks: list[np.ndarray], *, full: bool = True) -> dict[str, float]:
    """SDR and SI-SDR (dB) of each clip's masked estimates against its stems: the mean over the (clip,
    stem) pairs whose reference is not silent, overall and per stem; ``headline`` is the SDR.
    ``full=False`` (the validation passes during training): SI-SDR alone, 30x cheaper than SDR's
    distortion filters, as the headline."""
    import fast_bss_eval

    sdr: dict[str, list[float]] = {name: [] for name in STEMS}
    si_sdr: dict[str, list[float]] = {name: [] for name in STEMS}
    for path, clip_labels, clip_masks in zip(paths, labels, masks):
        mix = read_audio(path)
        references = np.stack([read_audio(clip_labels["stems"][name]) for name in STEMS]).astype(np.float64)
        estimate = estimates(clip_masks, mix).astype(np.float64)
        audible = np.mean(references**2, axis=1) > _SILENT
        if not audible.any():
            continue
        ref, est = references[audible], estimate[audible]
        est = est + 1e-9 * np.random.default_rng(0).standard_normal(est.shape)  # a silent estimate stays defined
        si_values = fast_bss_eval.si_sdr(ref, est, clamp_db=60.0)
        values = fast_bss_eval.sdr(ref, est, filter_length=512, clamp_db=60.0) if full else si_values
        for name, value, si_value in zip([n for n, a in zip(STEMS, audible) if a], values, si_values):
            sdr[name].append(float(value))
            si_sdr[name].append(float(si_value))
    every = [v for values in sdr.values() for v in values]
    if not every:
        raise ConfigError("no clip has an audible stem to score; check the separation task's stems.")
    out = {"si_sdr": float(np.mean([v for vs in si_sdr.values() for v in vs])), "clips": len(paths)}
    for name in STEMS:
        out[f"si_sdr_{name}"] = float(np.mean(si_sdr[name])) if si_sdr[name] else float("nan")
    if not full:
        return {**out, "headline": out["si_sdr"]}
    out["sdr"] = float(np.mean(every))
    for name in STEMS:
        out[f"sdr_{name}"] = float(np.mean(sdr[name])) if sdr[name] else float("nan")
    out["headline"] = out["sdr"]
    return out


def hpss_masks(magnitude: np.ndarray, *, cutoff_hz: float) -> np.ndarray:
    """HPSS masks ``(frames, stems x bins)`` of a magnitude ``(frames, bins)``: percussive -> drums,
    harmonic below ``cutoff_hz`` -> bass, harmonic above -> other."""
    import librosa

    harmonic, percussive = librosa.decompose.hpss(magnitude.T.astype(np.float32), mask=True)
    low = (np.arange(BINS) * SAMPLE_RATE / N_FFT < cutoff_hz)[:, None]
    masks = np.stack([percussive, harmonic * low, harmonic * ~low])  # (stems, bins, frames)
    return masks.transpose(2, 0, 1).reshape(magnitude.shape[0], -1)


def ideal_masks(target: np.ndarray) -> np.ndarray:
    """Ideal ratio masks ``(frames, stems x bins)`` from a clip's target ``(frames, 1 + stems, bins)``."""
    stems = target[:, 1:].astype(np.float32)
    return (stems / np.maximum(stems.sum(axis=1, keepdims=True), 1e-8)).reshape(len(target), -1)


def references(splits: dict[str, list]) -> dict[str, dict[str, object]]:
    """The untrained references on the test split: HPSS with its cutoff chosen on validation, and the
    ideal ratio masks."""
    def run(clips, make, full: bool = True) -> dict[str, float]:
        return score_clips([c.path for c in clips], [c.labels for c in clips], [make(c) for c in clips], full=full)

    valid = {cutoff: run(splits["valid"], lambda c, k=cutoff: hpss_masks(c.target[:, 0].astype(np.float32),
                                                                          cutoff_hz=k), full=False)["si_sdr"]
             for cutoff in HPSS_CUTOFFS_HZ}
    cutoff = max(valid, key=valid.get)  # type: ignore[arg-type]
    hpss = run(splits["test"], lambda c: hpss_masks(c.target[:, 0].astype(np.float32), cutoff_hz=cutoff))
    return {"hpss": {"test": hpss, "cutoff_hz": cutoff, "valid_si_sdr_by_cutoff": {f"{k:g}": v for k, v in valid.items()},
                     "what": "librosa HPSS: percussive -> drums, harmonic below the cutoff -> bass, above -> other "
                             "(cutoff chosen on validation SI-SDR)"},
            "ideal-ratio-masks": {"test": run(splits["test"], lambda c: ideal_masks(c.target)),
                                  "what": "oracle: each stem's magnitude share of the mix (an upper bound for masks)"}}


__all__ = ["BINS", "mix_input", "HOP", "N_FFT", "SAMPLE_RATE", "estimates", "hpss_masks", "ideal_masks", "istft",
           "load_separation", "read_audio", "references", "score_clips", "separation_loss", "stft"]
