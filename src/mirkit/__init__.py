"""mirkit: music foundation models for real music-information-retrieval work."""

__version__ = "0.1.0"
