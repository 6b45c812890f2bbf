"""Feature store: recipes, atomic layer-wise items, resumable extraction."""

from mirkit.features.recipe import FeatureRecipe
from mirkit.features.store import FeatureStore, RecipeStore, VerifyReport, content_hash

__all__ = ["ExtractConfig", "ExtractReport", "FeatureRecipe", "FeatureStore", "RecipeStore", "VerifyReport",
           "content_hash", "extract"]


def __getattr__(name: str):  # extract pulls in torch; load it on first use
    if name in ("extract", "ExtractConfig", "ExtractReport"):
        from mirkit.features import extract as module

        return getattr(module, name)
    raise AttributeError(name)
