"""Time-resolved probing: heads on every frame of frozen features, targets on the frame grid, and
decoding of frame activations to musical outputs (beat times, downbeats, tempo, chord segments)."""
