"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs), and works offline.

Working offline is checked in a real browser: Debian's headless Chromium, driven by Playwright,
loads pages of the built site from 127.0.0.1 with every other address blocked, and the formulas
must be typeset (MathJax is served by the site itself, see docs/hooks/offline.py).
"""

import functools
import http.server
import os
import pathlib
import re
import subprocess
import sys
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHROMIUM = pathlib.Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once for this file."""
    site = tmp_path_factory.mktemp("docs") / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return site


def test_mkdocs_strict_build_passes(site):
    assert (site / "index.html").exists()
    assert (site / "api" / "index.html").exists()
    assert (site / "notebooks" / "01_cell_contract" / "index.html").exists()
    assert (site / "mathjax" / "MathJax.js").exists() and (site / "mathjax" / "config" / "local" / "rnnlab.js").exists()


def test_no_page_loads_a_script_stylesheet_or_font_from_the_internet(site):
    remote = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""", re.I)
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        found = [text[m.start():m.start() + 120] for m in remote.finditer(text)]
        assert not found, f"{page.relative_to(site)} loads from the internet: {found}"
    for sheet in site.rglob("*.css"):
        assert not re.search(r"@import\s+url\(\s*['\"]?https?:|url\(\s*['\"]?https?:", sheet.read_text(encoding="utf-8")), sheet


@pytest.fixture(scope="module")
def served(site):
    """The site on a free port of 127.0.0.1, for the browser."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def offline_page(served):
    """A Chromium page that may load only from the local server; ``page.outside`` lists what it tried elsewhere."""
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install -y chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page()
        page.outside = []

        def only_local(route):
            if route.request.url.startswith(served):
                route.continue_()
            else:
                page.outside.append(route.request.url)
                route.abort()

        page.route("**/*", only_local)
        yield page
        browser.close()


def typeset_text(page, url):
    """Open ``url`` and wait until MathJax has typeset it; return the text a reader sees."""
    page.goto(url)
    page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.isReady", timeout=30000)
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(done))")
    assert page.locator(".MathJax").count() > 0, f"{url}: no formula was typeset"
    return page.evaluate("() => document.querySelector('article').innerText")


@pytest.mark.parametrize("path, raw", [
    ("bptt/", r"\("),  # a markdown page: arithmatex's \( ... \)
    ("notebooks/02_trajectories_and_phase_portraits/", "$s_{t+1}"),  # a notebook's inline $ ... $
])
def test_formulas_are_typeset_offline(offline_page, served, path, raw):
    text = typeset_text(offline_page, f"{served}/{path}")
    assert raw not in text, f"{path} shows raw TeX {raw!r}"
    assert offline_page.outside == [], f"{path} tried to load from outside: {offline_page.outside}"
