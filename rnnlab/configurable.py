"""What initializers, regularizers and constraints share: a config, a repr, and a class from a config dict."""


class Configurable:
    """A small object described by its settings: ``get_config()`` and a repr such as ``MaxNorm(max_value=2.0, axis=0)``."""

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def class_and_config(spec, classes, kind):
    """``(cls, config)`` for a ``{"class_name", "config"}`` dict whose class is in ``classes`` (checked by the caller).

    The config is optional (``{}``); anything but a dict is a TypeError naming the ``kind``
    ("initializer", "regularizer", "constraint").
    """
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise TypeError(f"the config of {kind} {spec['class_name']!r} must be a dict, got {config!r}")
    return classes[spec["class_name"]], config
