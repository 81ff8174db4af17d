"""mkdocs hook: the site carries its own MathJax, so it works with no network.

MathJax 2 comes from the ``jupyter-server-mathjax`` package (in the ``docs``
and ``dev`` extras).  After the build it is copied to ``<site>/mathjax/``
(without its translations: the site is in English), with rnnlab's settings
(``mathjax-rnnlab.js`` beside this file) as ``config/local/rnnlab.js``.
``mkdocs.yml``'s ``extra_javascript`` and the notebook pages load it from there.
"""

import pathlib
import shutil

HERE = pathlib.Path(__file__).parent


def on_post_build(config, **kwargs):
    import jupyter_server_mathjax

    source = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    target = pathlib.Path(config["site_dir"]) / "mathjax"
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("localization"))
    (target / "config" / "local").mkdir(exist_ok=True)
    shutil.copy(HERE / "mathjax-rnnlab.js", target / "config" / "local" / "rnnlab.js")
