"""Defaults of ``mirkit bench`` (a light module: the CLI reads it while building its parser)."""

#: The built-in default encoders: real offline weights, a random-init twin and handcrafted baselines.
DEFAULT_ENCODERS = ("musicnn-mtt", "crepe-tiny", "random:musicnn-mtt", "logmel", "mfcc", "chroma")
#: Peers tried by default; those not installed are reported as not run.
DEFAULT_PEERS = ("librosa-beat", "librosa-ks", "essentia-rhythm", "essentia-key", "madmom-tempo", "madmom-key")
#: Frame rates the bench uses for encoders with a free frame hop. Clip-level probes mean-pool the
#: frames, and CREPE's 100 fps costs 20x the compute of 5 fps for the same clip mean (2x real time
#: on a 2-core CPU at 100 fps); pass --frame-rate-hz to `mirkit probe` for other choices.
BENCH_FRAME_RATE_HZ = {"crepe-tiny": 5.0, "crepe-full": 5.0}
