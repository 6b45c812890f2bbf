"""Encoders: one interface over pretrained models, handcrafted baselines and random twins.

``mirkit.encoders`` itself imports no torch; :func:`load_encoder` does, when called.
"""

from mirkit.encoders.spec import EncoderSpec, LayerSpec
from mirkit.encoders.zoo import (
    ENCODERS,
    get_spec,
    list_specs,
    load_encoder,
    register_encoder,
)

__all__ = ["ENCODERS", "EncoderSpec", "LayerSpec", "get_spec", "list_specs", "load_encoder", "register_encoder"]
