"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs), and works offline.

Working offline is checked in a real browser: Debian's headless Chromium, driven by Playwright,
loads pages of the built site from 127.0.0.1 with every other address blocked, and the formulas
must be typeset (MathJax is served by the site itself, see docs/hooks/offline.py).
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest
from site_browser import offline_browser, screenshot, typeset_text

ROOT = pathlib.Path(__file__).resolve().parents[1]


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


#: reStructuredText that Markdown would show raw: roles, and "::" ending a paragraph
RAW_REST = re.compile(r":(?:meth|class|func|mod|data|attr|exc|obj):`|::</p>|::\n")


def test_the_api_page_shows_no_raw_restructuredtext(site):
    text = (site / "api" / "index.html").read_text(encoding="utf-8")
    found = [text[max(0, m.start() - 60):m.end() + 20] for m in RAW_REST.finditer(text)]
    assert not found, f"raw reST on the API page: {found[:5]}"


@pytest.fixture(scope="module")
def browser(site):
    with offline_browser(site) as page_and_base:
        yield page_and_base


@pytest.mark.parametrize("path, raw", [
    ("bptt/", r"\("),  # a guide page: arithmatex's \( ... \)
    ("notebooks/02_trajectories_and_phase_portraits/", "$s_{t+1}"),  # a notebook's inline $ ... $
])
def test_formulas_are_typeset_offline(browser, path, raw):
    page, base = browser
    text = typeset_text(page, f"{base}/{path}")
    assert raw not in text, f"{path} shows raw TeX {raw!r}"
    assert page.outside == [], f"{path} tried to load from outside: {page.outside}"


@pytest.mark.parametrize("path, shot", [("", "docs_home.png"), ("api/", "docs_api.png"), ("benchmarks/", None)])
def test_pages_load_offline_and_wide_tables_scroll(browser, path, shot):
    """Nothing is cut off: a table or code block wider than the page scrolls inside its own box."""
    page, base = browser
    page.goto(f"{base}/{path}")
    page.wait_for_load_state("networkidle")
    cut = page.evaluate("""() => [...document.querySelectorAll("article table, article pre")].filter(el => {
        let box = el;  // the nearest box that clips it must let it scroll
        while (box && box !== document.body && getComputedStyle(box).overflowX === "visible") box = box.parentElement;
        const overflowX = box ? getComputedStyle(box).overflowX : "visible";
        return box.scrollWidth > box.clientWidth + 1 && !["auto", "scroll"].includes(overflowX);
    }).map(el => el.outerHTML.slice(0, 80))""")
    assert cut == [], f"{path or 'home'}: wide content is cut off: {cut}"
    assert page.outside == [], f"{path or 'home'} tried to load from outside: {page.outside}"
    if shot:
        screenshot(page, shot)


def test_no_issue_numbers_or_doubled_navigation(site):
    """The docs speak to users: no "issue #15" or "(issue 19)", and the Notebooks section's first page is "Overview"."""
    for page in (ROOT / "docs").glob("*.md"):
        found = re.findall(r"\bissues? #?\d+|\(issue\b[^)]*\)", page.read_text(encoding="utf-8"), flags=re.I)
        assert not found, f"{page.name} mentions {found}"
    nav = (site / "index.html").read_text(encoding="utf-8")
    labels = [re.sub(r"<[^>]+>|\s+", " ", m).strip() for m in re.findall(r'class="md-nav__link[^"]*"[^>]*>(.*?)</(?:a|label)>', nav, flags=re.S)]
    assert "Overview" in labels and labels.count("Notebooks") <= 1, labels
