"""A built docs site seen in Debian's headless Chromium, offline: shared by the docs and notebook tests.

``offline_browser(site)`` serves the site on a free port of 127.0.0.1 and yields a Playwright page
that may load only from there (every other request is blocked and listed in ``page.outside``).
Screenshots go to ``test-artifacts/`` (git ignores it).
"""

import contextlib
import functools
import http.server
import pathlib
import threading

CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = pathlib.Path(__file__).resolve().parents[1] / "test-artifacts"


@contextlib.contextmanager
def offline_browser(site):
    """Yield ``(page, base_url)`` for the site at ``site``; ``page.outside`` collects blocked requests."""
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install -y chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.outside = []

            def only_local(route):
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    page.outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            yield page, base
            browser.close()
    finally:
        server.shutdown()


def typeset_text(page, url):
    """Open ``url`` and wait until MathJax has typeset it; return the text a reader sees."""
    page.goto(url)
    page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.isReady", timeout=30000)
    page.evaluate("() => new Promise(done => MathJax.Hub.Queue(done))")
    assert page.locator(".MathJax").count() > 0, f"{url}: no formula was typeset"
    return page.evaluate("() => document.querySelector('article').innerText")


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / name, full_page=True)
