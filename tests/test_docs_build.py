"""The docs site builds with ``mkdocs build --strict`` (what ``make docs`` runs)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_mkdocs_strict_build_passes(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", RNNLAB_DOCS_EXECUTE="false")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "api" / "index.html").exists()
    assert (tmp_path / "site" / "notebooks" / "01_cell_contract" / "index.html").exists()
