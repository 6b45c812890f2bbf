"""The search web page and its JSON API (FastAPI); built on :class:`mirkit.retrieval.search.SearchEngine`."""
