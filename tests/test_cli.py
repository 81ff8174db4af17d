"""The ``rnnlab`` command: ``info`` reports the kernel set-up; the other commands stay reachable."""

import os
import subprocess
import sys

import pytest

from rnnlab import cli


def test_info_prints_numba_threading_svml_and_cache(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    import numba

    for label in ("numba:", "threading layer:", "SVML:", "BLAS threads:", "cache dir:"):
        assert label in out
    assert numba.__version__ in out
    assert "__pycache__" in out or os.environ.get("NUMBA_CACHE_DIR", "") in out


def test_info_shows_numba_cache_dir_from_the_environment(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "rnnlab", "info"], capture_output=True, text=True, check=True,
                         env=env).stdout
    assert f"cache dir:       {tmp_path}" in out


def test_every_command_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for command in ("tour", "figures", "info"):
        assert command in out


def test_a_command_is_required():
    with pytest.raises(SystemExit):
        cli.main([])
