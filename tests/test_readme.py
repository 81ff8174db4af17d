"""The README's example runs exactly as written, and its two commands are the first thing shown."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_example_runs_as_written(tmp_path, monkeypatch, capsys):
    (example,) = python_blocks()
    monkeypatch.chdir(tmp_path)  # it writes lstm.npz
    exec(compile(example, str(README), "exec"), {})
    assert "[(3, 32), (8, 32), (32,)]" in capsys.readouterr().out
    assert (tmp_path / "lstm.npz").exists()


def test_readme_starts_with_the_two_commands():
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, flags=re.S).group(1)
    assert "make demo" in first_block and "make test" in first_block
    assert text.index("make demo") < text.index("```python")
