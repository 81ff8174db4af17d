"""Synthetic teaching tasks, each with an analytic chance-level baseline.

Every generator is seeded (``seed=`` an int or a ``numpy.random.Generator``;
the global random state is never used) and returns a ``TaskData`` whose
inputs ``x`` have the batch-major shape (batch, time, features) that
``rnnlab.RNN`` eats, and whose ``baseline`` is the loss of a chance-level
predictor, the reference line for a learning curve.

    import rnnlab.tasks as tasks
    data = tasks.get("adding_problem", batch=64, time=50, seed=0)
    data.x.shape, data.y.shape, data.baseline   # (64, 50, 2), (64, 1), 1/6

========================  ==========================  =============================
task                      targets                     baseline
========================  ==========================  =============================
adding_problem            sum, last step (mse)        predict the mean: 1/6
copy_memory               symbol ids, every step      memoryless: 10 log 8 / (T+20)
flip_flop                 held signs, every step      output 0
parity                    class id, last step         entropy of the target: log 2
delayed_xor               class ids, every step       entropy of the target: log 2
sine_wave, mackey_glass,  next value, every step      persistence (x[t+1] = x[t])
lorenz
embedded_reber            next symbol, every step     sees only the current symbol
sequential_digits         label, last step            uniform guess: log 10
next_char                 next character, every step  character frequencies
========================  ==========================  =============================
"""

from .base import TaskData, entropy, uniform_chance, uniform_variance
from .digits import sequential_digits
from .dynamics import (integrate_lorenz, integrate_mackey_glass, lorenz, mackey_glass,
                       persistence_mse, sine_wave)
from .logic import delayed_xor, odd_parity_probability, parity
from .memory import (adding_baseline_mse, adding_problem, copy_memory, copy_memory_baseline,
                     flip_flop, flip_flop_baseline_mse)
from .reber import embedded_reber, reber_baseline, reber_entropy_rate, reber_strings, reber_text
from .text import next_char

TASKS = {
    generator.__name__: generator
    for generator in (adding_problem, copy_memory, flip_flop, parity, delayed_xor, sine_wave,
                      mackey_glass, lorenz, embedded_reber, sequential_digits, next_char)
}


def names():
    """The registered task names, sorted."""
    return sorted(TASKS)


def get(name, **kwargs):
    """Generate one batch of the task called ``name``: ``TASKS[name](**kwargs)``."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(names())}")
    return TASKS[name](**kwargs)
