"""FastAPI app: one search page plus a small JSON API over an open :class:`SearchEngine`.

Routes: ``GET /`` the page; ``GET /api/search?q=&k=&artist=&genre=&where=``; ``GET /api/like/{id}?k=&where=``;
``GET /api/browse?where=&sort=&k=`` (tracks by key, tempo and instrument, without a query);
``GET /api/artist?name=&k=``; ``GET /api/facets`` (artists and genres for the filters);
``GET /audio/{id}`` the audio of an indexed track.

Security: audio is served only for ids that are in the index (a 32-hex-digit id looked up in the
engine; the client never names a path, so traversal attempts get 404); queries are at most
``MAX_QUERY_CHARS`` characters and ``k`` is 1..``MAX_K``; the page renders every value with
``textContent`` (no HTML injection); ``mirkit serve`` binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import mimetypes
import re
from importlib.resources import files

from mirkit.errors import ConfigError, UnknownNameError
from mirkit.retrieval.analysis_fields import parse_where
from mirkit.retrieval.search import MAX_K, MAX_QUERY_CHARS, SearchEngine

_ID = re.compile(r"^[0-9a-f]{32}$")


def create_app(engine: SearchEngine):
    from fastapi import FastAPI, HTTPException, Query
    from fastapi.responses import FileResponse, HTMLResponse

    app = FastAPI(title="mirkit search", docs_url=None, redoc_url=None)
    page = files("mirkit.web").joinpath("page.html").read_text(encoding="utf-8")

    def hits(call):
        try:
            return {"results": [hit.to_dict() for hit in call()]}
        except (ConfigError, UnknownNameError) as exc:
            raise HTTPException(status_code=400 if isinstance(exc, ConfigError) else 404, detail=str(exc)) from None

    @app.get("/", response_class=HTMLResponse)
    def index_page() -> str:
        return page

    @app.get("/api/search")
    def search(q: str = Query(..., min_length=1, max_length=MAX_QUERY_CHARS), k: int = Query(10, ge=1, le=MAX_K),
               artist: str | None = Query(None, max_length=200), genre: str | None = Query(None, max_length=200),
               where: str | None = Query(None, max_length=200)):
        return hits(lambda: engine.search(q, k=k, artist=artist or None, genre=genre or None, where=parse_where(where)))

    @app.get("/api/like/{track_id}")
    def like(track_id: str, k: int = Query(10, ge=1, le=MAX_K), where: str | None = Query(None, max_length=200)):
        if not _ID.match(track_id):
            raise HTTPException(status_code=404, detail="unknown track id")
        return hits(lambda: engine.like(track_id=track_id, k=k, where=parse_where(where)))

    @app.get("/api/browse")
    def browse(where: str = Query(..., min_length=1, max_length=200), k: int = Query(10, ge=1, le=MAX_K),
               sort: str = Query("title", max_length=20), artist: str | None = Query(None, max_length=200),
               genre: str | None = Query(None, max_length=200)):
        return hits(lambda: engine.browse(where=parse_where(where), sort=sort, k=k, artist=artist or None,
                                          genre=genre or None))

    @app.get("/api/artist")
    def artist(name: str = Query(..., min_length=1, max_length=200), k: int = Query(10, ge=1, le=MAX_K)):
        return hits(lambda: engine.like_artist(name, k=k))

    @app.get("/api/facets")
    def facets():
        return {"artists": sorted({str(r["artist"]) for r in engine.rows if r["artist"]}),
                "genres": sorted({str(r["genre"]) for r in engine.rows if r["genre"]}),
                "tracks": len(engine.rows), "model": engine.model_path is not None}

    @app.get("/audio/{track_id}")
    def audio(track_id: str):
        if not _ID.match(track_id) or track_id not in engine.row_of:
            raise HTTPException(status_code=404, detail="unknown track id")
        path = engine.audio_path(track_id)
        if not path.is_file():
            raise HTTPException(status_code=404, detail="the indexed file is gone; rescan with `mirkit index`")
        return FileResponse(path, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    return app
