"""What a student sees in a real browser: a slider notebook in JupyterLab, in headless Chromium.

The test starts JupyterLab on 127.0.0.1 (a free port, a token, a temporary root holding a copy of
notebook 2), opens the notebook in Debian's Chromium driven by Playwright, runs every cell, moves the
first slider one step with the keyboard and checks that the figure under the sliders is redrawn.
Screenshots before and after the move go to test-artifacts/, which git ignores.

Chromium comes from Debian's package (``apt-get install -y chromium``; ``.ci/run`` installs it):
Playwright's own browser downloads do not work here.  Without it the test fails, never skips, so
that CI cannot pass without looking at the notebook.
"""

import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "02_trajectories_and_phase_portraits.ipynb"
CHROMIUM = pathlib.Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"

#: The bytes of an <img>, as a SHA-256 hex digest computed in the page (its src is a data: or blob: URL).
IMAGE_DIGEST = """async img => {
    const bytes = await (await fetch(img.src)).arrayBuffer();
    const digest = await crypto.subtle.digest("SHA-256", bytes);
    return Array.from(new Uint8Array(digest), b => b.toString(16).padStart(2, "0")).join("");
}"""


#: Run > Run All Cells, once the notebook's kernel is ready.
RUN_ALL_CELLS = """async () => {
    const panel = window.jupyterapp.shell.currentWidget;
    await panel.context.ready;
    await panel.sessionContext.ready;
    await window.jupyterapp.commands.execute("notebook:run-all-cells");
}"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "JupyterLab exited during start-up"
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout} s")


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the slider notebook; yields its base URL and token."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
               "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: run commands as the menus do
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as a student gets it
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/api/status?token={token}", server)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_moving_a_slider_in_jupyterlab_redraws_the_figure(jupyterlab):
    assert CHROMIUM.exists(), "the browser test needs Debian's Chromium: apt-get install -y chromium (.ci/run does)"
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook .jp-CodeCell')",
                               timeout=60_000)
        page.evaluate(RUN_ALL_CELLS)

        slider_cell = page.locator(".jp-Notebook .jp-CodeCell").last
        handle = slider_cell.locator(".noUi-handle").first
        figure = slider_cell.locator(".jp-OutputArea-output img").first
        try:
            handle.wait_for(timeout=90_000)
            figure.wait_for(timeout=30_000)
        except Exception:  # keep what the student would have seen, e.g. a traceback in a cell
            page.screenshot(path=ARTIFACTS / "browser_no_sliders.png", full_page=True)
            raise
        handle.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "browser_slider_before.png")
        before = figure.evaluate(IMAGE_DIGEST)

        handle.focus()
        page.keyboard.press("ArrowRight")  # one slider step, as a student's arrow key does
        deadline = time.monotonic() + 30
        after = before
        while after == before and time.monotonic() < deadline:
            page.wait_for_timeout(250)
            image = slider_cell.locator(".jp-OutputArea-output img").first
            after = image.evaluate(IMAGE_DIGEST) if image.count() else before
        page.screenshot(path=ARTIFACTS / "browser_slider_after.png")
        browser.close()
    assert after != before, "moving the slider did not change the figure (see test-artifacts/browser_slider_*.png)"
