"""Labelled data: task specs, manifests, the offline benchmark suite and its renderers."""
