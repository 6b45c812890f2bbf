"""The search page end to end in headless Chromium (Playwright driving Debian's ``chromium``).

Opt-in tier: runs when ``playwright`` is importable and a Chromium binary is found (``MIRKIT_CHROMIUM``
or ``chromium`` on PATH; Debian: ``apt-get install chromium``, then ``pip install playwright``);
skipped with that reason otherwise. The server is uvicorn on a free loopback port, serving the tiny
synthetic index of the unit tests.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("MIRKIT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("playwright") is None or CHROMIUM is None,
    reason="web tier: needs `pip install playwright` and a Chromium binary (Debian: apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from mirkit.encoders.text import tiny_text_encoder
    from mirkit.retrieval.index import index_library
    from mirkit.retrieval.search import SearchEngine
    from mirkit.web.app import create_app
    from tests.unit.test_retrieval import CONFIG, make_library

    root = tmp_path_factory.mktemp("web")
    text_encoder = tiny_text_encoder()
    index_library(make_library(root / "music", n=6), db=root / "lib", config=CONFIG, progress=False,
                  text_encoder=text_encoder)
    engine = SearchEngine(root / "lib", text_encoder=text_encoder)
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    assert instance.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", engine, root
    instance.should_exit = True
    thread.join(timeout=10)


def test_search_play_more_like_this_in_chromium(server):
    from playwright.sync_api import sync_playwright

    url, engine, root = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url)
        page.wait_for_function("document.getElementById('status').textContent.includes('tracks indexed')")
        assert page.locator("#artist option").all_text_contents() == ["any artist", "Alpha", "Beta"]
        page.fill("#q", "Tone Song 4")
        page.press("#q", "Enter")
        page.wait_for_selector("li.result")
        titles = page.locator("li.result .title").all_text_contents()
        assert titles[0] == "Tone Song 4" and len(titles) == 10
        first_id = page.locator("li.result").first.get_attribute("data-id")
        src = page.locator("li.result audio").first.get_attribute("src")
        assert src == f"/audio/{first_id}"
        audio = page.request.get(url + src)
        assert audio.status == 200 and audio.headers["content-type"] == "audio/flac"
        assert audio.body() == Path(engine.audio_path(first_id)).read_bytes()
        shot = root / "results.png"
        page.screenshot(path=str(shot), full_page=True)
        _assert_results_rendered(shot)
        # filters: only Beta's tracks
        page.select_option("#artist", "Beta")
        page.press("#q", "Enter")
        page.wait_for_function("[...document.querySelectorAll('li.result .meta')].every(e => e.textContent.startsWith('Beta'))")
        assert len(page.locator("li.result").all()) == 6
        # more like this: the clicked track is not among its own neighbours
        clicked = page.locator("li.result").first.get_attribute("data-id")
        page.locator("li.result button.more").first.click()
        page.wait_for_function("document.getElementById('status').textContent.includes('more like')")
        ids = [e.get_attribute("data-id") for e in page.locator("li.result").all()]
        assert clicked not in ids and len(ids) == 10
        # hostile input is rendered as text, never as HTML
        page.select_option("#artist", "")
        page.fill("#q", "<img src=x onerror=alert(1)>")
        page.press("#q", "Enter")
        page.wait_for_function("document.getElementById('status').textContent.includes('onerror')")
        assert page.locator("img").count() == 0
        for attack in ("/audio/..%2F..%2Fetc%2Fpasswd", "/audio/../../etc/passwd", "/audio/" + "f" * 32):
            assert page.request.get(url + attack).status == 404
        browser.close()


def test_the_url_holds_the_search_so_it_can_be_linked_reloaded_and_navigated(server):
    from urllib.parse import parse_qs, urlparse

    from playwright.sync_api import sync_playwright

    url, _, _ = server
    results = "[...document.querySelectorAll('li.result .title')].map(e => e.textContent)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('status').textContent.includes('tracks indexed')")
        page.select_option("#artist", "Beta")
        page.fill("#q", "Tone Song 4")
        page.press("#q", "Enter")
        page.wait_for_function("document.getElementById('status').textContent.includes('results for')")
        assert parse_qs(urlparse(page.url).query) == {"q": ["Tone Song 4"], "artist": ["Beta"]}
        filtered = page.evaluate(results)
        # a link to that URL opens the same search, filters included
        linked = browser.new_page()
        linked.goto(page.url)
        linked.wait_for_function("document.getElementById('status').textContent.includes('results for')")
        assert linked.input_value("#q") == "Tone Song 4" and linked.input_value("#artist") == "Beta"
        assert linked.evaluate(results) == filtered
        # more like this is a URL too; back returns to the search, forward to the neighbours
        page.locator("li.result button.more").first.click()
        page.wait_for_function("document.getElementById('status').textContent.includes('more like')")
        assert "like" in parse_qs(urlparse(page.url).query)
        neighbours = page.evaluate(results)
        page.go_back()
        page.wait_for_function("document.getElementById('status').textContent.includes('“Tone Song 4”')")
        assert page.evaluate(results) == filtered and page.input_value("#q") == "Tone Song 4"
        page.go_forward()
        page.wait_for_function("document.getElementById('status').textContent.includes('more like')")
        assert page.evaluate(results) == neighbours
        page.reload()
        page.wait_for_function("document.getElementById('status').textContent.includes('more like')")
        assert page.evaluate(results) == neighbours
        browser.close()


def _assert_results_rendered(path: Path) -> None:
    """The screenshot is a real page with several result cards, not a blank or error page."""
    import matplotlib.image as mpimg

    pixels = mpimg.imread(str(path))[..., :3]
    assert pixels.shape[0] > 900  # full page with ten results is taller than the viewport
    gray = pixels.mean(axis=2)
    assert gray.std() > 0.05  # not blank
    # result cards have light-gray borders (#ddd): many rows contain them
    border_rows = np.sum(np.any(np.abs(gray - 0xDD / 255) < 0.02, axis=1))
    assert border_rows > 20
