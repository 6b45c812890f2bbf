"""Defaults of ``mirkit bench`` (a light module: the CLI reads it while building its parser)."""

#: The built-in default encoders: real offline weights (two from wheels, mirkit's own pretrained model), their
#: random-init twins and handcrafted baselines.
DEFAULT_ENCODERS = ("musicnn-mtt", "crepe-tiny", "mirkit-mel-small", "random:musicnn-mtt", "random:mirkit-mel-small",
                    "logmel", "mfcc", "chroma")
#: Peers tried by default; those not installed are reported as not run.
DEFAULT_PEERS = ("librosa-beat", "librosa-ks", "librosa-beats", "chroma-templates", "basic-pitch", "essentia-rhythm",
                 "essentia-key", "essentia-beats", "madmom-tempo", "madmom-key", "madmom-beats", "madmom-downbeats",
                 "madmom-chords")
