r"""Golden fixtures from tf.keras 2 itself, for rnnlab's TensorFlow-free tests.

Run ``make golden`` (it creates ``tests/golden/.venv`` with tensorflow-cpu==2.21.0
and tf-keras==2.21.0 the first time), or with any Python that has them::

    TF_CPP_MIN_LOG_LEVEL=2 python tests/golden/make_golden.py          # write + verify
    python tests/golden/make_golden.py --fd            # + finite differences, 13 cases
    python tests/golden/make_golden.py --fd all        # + finite differences, every case
    python tests/golden/make_golden.py --verify-only   # only reload and check the files
    python tests/golden/make_golden.py --list          # the case names

The script is deterministic: each case draws from ``numpy.random.default_rng``
seeded with ``zlib.crc32(case_name)`` (stored as ``seed``), every computation is
float64 on the CPU, and the zip entries carry a fixed date, so a rerun writes
byte-identical files (``fixtures/MANIFEST.json`` lists their sha256).  Files of
cases no longer in the list are removed.  After writing, every file is reloaded
and checked (keys, dtypes, shapes, nesting, the stored loss); ``--fd`` also
checks the stored tape gradients against central differences of the loss computed
with tf.keras forward passes (eps 1e-6, |fd - tape| <= 1e-8 + 1e-6 |tape|) and
that regenerating the case reproduces the stored arrays bit for bit.

Files
=====

``fixtures/<case>.npz``: one case per file, written like ``np.savez_compressed``;
read with ``np.load(path)`` (no pickle needed).  ``fixtures/MANIFEST.json``:
``{"format_version", "generator", "loss", "cases": {name: {"file", "sha256",
"bytes"}}}``.

Keys of one ``.npz``
====================

Every array is float64 except ``mask``/``mask_first`` (bool) and ``config``.
Indices run from 0 without gaps; how many there are is in the config.

``config``           0-d unicode array holding a JSON object: ``json.loads(str(f["config"]))``.
``x``                the input of the recorded call, (B, T, D); (T, B, D) when ``time_major``.
``mask``             only with ``has_mask``: bool, (B, T); (T, B) when ``time_major``
                     (the layout tf.keras 2 takes).  True = step used.
``initial_state_i``  only with ``has_initial_state``; i < ``n_initial_state``; each (B, size).
                     The flat leaves of the initial state, depth-first; the nested value
                     passed to tf.keras is ``state_structure`` with leaf k = initial_state_k.
``constant_i``       only with ``has_constants``: passed as ``constants=[constant_0, ...]``.
``dropout_mask``     only with ``dropout_masks`` (B, D): the input dropout mask of the call.
``recurrent_dropout_mask``  only with ``dropout_masks`` (B, U): the recurrent one.  See
                     "Dropout" below.
``weight_i``         i < ``n_weights``: ``layer.get_weights()`` order (Bidirectional: the
                     forward layer's weights, then the backward layer's; StackedRNNCells:
                     cell after cell; per Keras cell: kernel, recurrent_kernel, bias).
``output_i``         i < ``n_outputs``: what the layer call returned, flattened
                     depth-first (``tf.nest.flatten``).  ``output_structure`` gives the nesting.
``probe_i``          same shape as ``output_i``: the fixed random probes of the loss.
``grad_weight_i``    dL/d weight_i.
``grad_x``           dL/d x.
``grad_initial_state_i``  dL/d initial_state_i (only with ``has_initial_state``).
``grad_constant_i``  dL/d constant_i (only with ``has_constants``).

Stateful cases only (``stateful_calls == 2``), see below:

``x_first``          the input of the first call (same shape as ``x``).
``mask_first``       the mask of the first call (with ``has_mask``; equal to ``mask``).
``first_output_i``   i < ``n_outputs``: the first call's outputs (same structure).
``carried_state_i``  i < ``n_carried_state``: the layer's states after the first call, i.e.
                     the initial states of the recorded second call, flat depth-first in
                     ``state_structure`` order.
``grad_carried_state_i``  dL/d carried_state_i.

The loss and the gradients
==========================

``L = sum_i sum(probe_i * output_i)`` over every leaf of the returned value (the
states too, when ``return_state``), computed in float64 inside one
``tf.GradientTape``; the gradients are ``tape.gradient(L, ...)`` with
``unconnected_gradients=ZERO`` (masked steps give exact zeros in ``grad_x``).
``loss_value`` in the config is L itself.

Stateful convention
===================

A ``stateful=True`` layer is reset to zero states and called twice: first on
``x_first`` (outside the tape), then on ``x`` (the recorded call).  ``output_i``
and every ``grad_*`` belong to the second call only: the carried state enters it
as a constant, whose gradient is ``grad_carried_state_i``; the weights' gradients
do not flow back into the first call.  To reproduce: set the weights,
reset the states, call on ``x_first`` (compare ``first_output_i``,
``carried_state_i``), call on ``x`` (compare ``output_i``), and differentiate the
second call with the carried state held fixed.

Dropout
=======

A case with ``dropout_masks`` (a config field present only in those cases, then
true) has a Keras cell with ``dropout`` and ``recurrent_dropout`` > 0 and is
called with ``training=True``; the cell's ``get_dropout_mask_for_cell`` and
``get_recurrent_dropout_mask_for_cell`` are replaced to return the stored
masks (each entry 0 or 1 / (1 - rate)), the same one for every gate: tf.keras 2
then switches GRU and LSTM to ``implementation=1``, whose per-gate masks
``inputs * dp_mask[k]`` and ``h_tm1 * rec_dp_mask[k]`` become one shared mask
for x and one for h, exactly what a cell with one mask per call computes
(``implementation=2``'s semantics).  The script checks that all-ones masks
reproduce the call without dropout.  To reproduce: call with ``training=True``
and these two masks.

Nesting-structure encoding
==========================

A nested list of leaf indices in depth-first order: the returned value with
each array replaced by its index in the flat list.  A bare array (no
``return_state``) is the integer ``0``.  Examples: LSTM with return_state
``[0, 1, 2]`` = [y, h, c]; StackedRNNCells([LSTMCell, SimpleRNNCell]) with
return_state ``[0, [1, 2], 3]`` = [y, [h1, c1], h2]; NestedStateCell
``[0, 1, [2, 3]]`` = [y, h, [a, b]]; Bidirectional(LSTM, merge_mode=None,
return_state) ``[0, 1, 2, 3, 4, 5]`` = [y_fw, y_bw, h_fw, c_fw, h_bw, c_bw];
Bidirectional over the stacked cell, return_state: ``[0, [1, 2], 3, [4, 5], 6]``.
``state_structure`` uses the same encoding for the state (the cell's
``state_size`` nesting; for Bidirectional the forward state list followed by the
backward one, e.g. ``[[0, 1], 2, [3, 4], 5]``), whatever the case returns.

Config fields
=============

``format_version`` (1), ``name``, ``description``, ``seed``, ``generator``
({script, tensorflow, tf_keras, numpy}), ``dtype`` ("float64"), ``loss`` (the
formula above), ``loss_value``.

``layer``: "RNN" or "Bidirectional" (``Bidirectional(RNN(cell, **rnn),
merge_mode=...)``; tf.keras makes the backward layer as a copy with
go_backwards flipped).

``cell``: ``{"class", "args", "custom", "state_size"}``; ``class`` is one of
SimpleRNNCell, GRUCell, LSTMCell (Keras cells, ``args`` are their constructor
arguments: units, activation, recurrent_activation, use_bias, reset_after,
unit_forget_bias; everything else is the Keras default: no dropout,
implementation 2), the custom cells MinimalRNNCell, NestedStateCell,
ConstantsCell (``custom`` true, ``equations`` a string defining the cell, see
below), or StackedRNNCells (no ``args``; ``cells`` a list of such cell objects).
``state_size``: the cell's state sizes as nested lists of ints, the structure
``initial_state`` takes (an int state is listed as ``[units]``; stacked:
``[[3, 3], 2]``).

``rnn``: the ``keras.layers.RNN`` arguments ``return_sequences``,
``return_state``, ``go_backwards``, ``stateful``, ``time_major``, ``unroll``
(always false), ``zero_output_for_mask`` (as passed).
``effective_zero_output_for_mask``: the value the layer really ran with
(Bidirectional overrides it, see below).
``bidirectional``: null, or ``{"merge_mode": "concat"|"sum"|"mul"|"ave"|null,
"backward_go_backwards": true}``.

``dropout_masks`` (dropout cases only, see "Dropout").
``has_mask``, ``mask_kind`` (null, "standard": sample 0 masked at its first and
last step, sample 1 at step T//2, any further sample unmasked;
"fully_masked_sample": the same plus sample 2 masked at every step),
``has_initial_state``, ``has_constants``, ``stateful_calls`` (1 or 2).

``batch_size`` (B), ``timesteps`` (T), ``input_dim`` (D); ``n_weights``,
``weight_names`` (the Keras variable names, for reading only);
``n_outputs``, ``output_structure``, ``output_roles`` (per flat output:
"output", or "output_forward"/"output_backward" for merge_mode None, then
"state_k" = final value of state leaf k, or "state_forward_k"/"state_backward_k"
with k counting the leaves of one direction); ``state_structure``,
``n_initial_state``, ``n_constants``, ``n_carried_state``.
``hard_sigmoid_linear_fraction`` (hard_sigmoid cases only): the fraction of
gate pre-activations inside (-2.5, 2.5), the linear part of tf.keras 2's
``hard_sigmoid(z) = clip(0.2 z + 0.5, 0, 1)``.

All inputs, weights, initial states, constants and probes are random multiples
of 2**-10 (exact in float64; it keeps the files small).  Every 2-D weight is
U(-1, 1) * scale / sqrt(rows), every bias U(-0.5, 0.5) * scale; x ~ N(0, 1);
scale 1, except the hard_sigmoid cases (scale 2, x ~ N(0, 2.5**2), so that
gate pre-activations fall on both sides of +-2.5); initial states U(-0.8, 0.8);
constants and probes N(0, 1).

The custom cells
================

MinimalRNNCell(units): the ``keras.layers.AbstractRNNCell`` docs' example.
    Weights kernel (D, units), recurrent_kernel (units, units).  State [h].
    h' = x @ kernel + h @ recurrent_kernel;  output = h';  state [h'].

NestedStateCell(units, a_units, b_units): ``state_size = [units, [a_units, b_units]]``,
    states nested as [h, [a, b]].  Weights, in order: kernel (D, units),
    recurrent_kernel (units, units), a_kernel (a_units, units),
    b_kernel (b_units, units), bias (units,), a_out (units, a_units),
    b_gate (units, b_units).
    h' = tanh(x @ kernel + h @ recurrent_kernel + a @ a_kernel + b @ b_kernel + bias)
    a' = 0.5 * a + tanh(h' @ a_out)
    b' = b * sigmoid(h' @ b_gate)
    output = concat([h', a'], -1)  (output_size units + a_units);  state [h', [a', b']].

ConstantsCell(units, constant_units): ``cell.call(x, states, constants=[c])``,
    ``RNN(cell)(x, constants=[c])`` with c (B, constant_units), the same at every
    step.  Weights: kernel (D, units), recurrent_kernel (units, units),
    constant_kernel (constant_units, units).  State [h].
    h' = tanh(x @ kernel + h @ recurrent_kernel + c @ constant_kernel);  output = h'.

tf.keras 2 behaviour worth knowing (all of it is in the fixtures)
===============================================================

* Masks: a masked step keeps the states and repeats the previous *output*;
  "previous" at the first processed step is zeros, not the initial state, so a
  leading masked step outputs 0 even with a nonzero ``initial_state``.  The final
  states returned with ``return_state`` are those of the last unmasked step; a
  fully masked sample returns its initial states and outputs zeros.
* ``zero_output_for_mask=True`` zeros masked steps' outputs, and with
  ``return_sequences=False`` the returned last output is zero for a sample
  whose last step is masked (its returned state is not).
* Bidirectional forces ``zero_output_for_mask = return_sequences`` on both
  halves, whatever was passed: masked steps of a merged sequence are zeros.
* ``go_backwards=True`` returns the sequence in processing order, i.e. reversed
  in time (``output[:, 0]`` is the step that read ``x[:, -1]``); the mask is
  reversed with the inputs.  Bidirectional reverses the backward sequence back
  before merging (also for merge_mode None).
* Bidirectional with return_state returns ``[merged, *forward_states,
  *backward_states]`` (merge_mode None: ``[y_fw, y_bw, *fw, *bw]``), each
  direction's states nested like its cell's; ``initial_state`` is the forward
  list followed by the backward one, split in half at the top level.
* StackedRNNCells returns and takes states nested per cell; a flat
  ``initial_state`` list is refused ("Layer has 2 states but was passed 3").
* A stateful layer's states are not in ``weights``/``get_weights()``.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import zipfile
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

try:
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402
except ImportError as exc:  # pragma: no cover - only without the golden venv
    sys.exit(
        f"make_golden.py needs tensorflow-cpu==2.21.0 and tf-keras==2.21.0 ({exc}); "
        "run `make golden`, which creates tests/golden/.venv with them"
    )

FORMAT_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "fixtures")
LOSS = "L = sum_i sum(probe_i * output_i)"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so a rerun writes byte-identical files

# --------------------------------------------------------------------------
# Custom cells (their equations are also written into each fixture's config)
# --------------------------------------------------------------------------

MINIMAL_EQUATIONS = (
    "MinimalRNNCell(units) (the example of the tf.keras AbstractRNNCell docs). "
    "Weights: kernel (input_dim, units), recurrent_kernel (units, units). "
    "State: [h], h (batch, units). Step: h' = x @ kernel + h @ recurrent_kernel; "
    "output = h'; new state = [h']."
)

NESTED_EQUATIONS = (
    "NestedStateCell(units, a_units, b_units). state_size = [units, [a_units, b_units]], "
    "i.e. states arrive and leave nested as [h, [a, b]] with h (batch, units), "
    "a (batch, a_units), b (batch, b_units). Weights, in this order: "
    "kernel (input_dim, units), recurrent_kernel (units, units), a_kernel (a_units, units), "
    "b_kernel (b_units, units), bias (units,), a_out (units, a_units), b_gate (units, b_units). "
    "Step: h' = tanh(x @ kernel + h @ recurrent_kernel + a @ a_kernel + b @ b_kernel + bias); "
    "a' = 0.5 * a + tanh(h' @ a_out); b' = b * sigmoid(h' @ b_gate); "
    "output = concat([h', a'], axis=-1) (output_size = units + a_units); "
    "new state = [h', [a', b']]. sigmoid(z) = 1 / (1 + exp(-z))."
)

CONSTANTS_EQUATIONS = (
    "ConstantsCell(units, constant_units), called as cell.call(x, states, constants=[c]) "
    "with one constant c (batch, constant_units), the same at every step. "
    "Weights, in this order: kernel (input_dim, units), recurrent_kernel (units, units), "
    "constant_kernel (constant_units, units). State: [h]. "
    "Step: h' = tanh(x @ kernel + h @ recurrent_kernel + c @ constant_kernel); "
    "output = h'; new state = [h']."
)


class MinimalRNNCell(keras.layers.AbstractRNNCell):
    """The AbstractRNNCell docs' example, verbatim apart from get_config."""

    def __init__(self, units, **kwargs):
        self.units = units
        super().__init__(**kwargs)

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units), initializer="uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units), initializer="uniform", name="recurrent_kernel"
        )
        self.built = True

    def call(self, inputs, states):
        prev_output = states[0]
        h = keras.backend.dot(inputs, self.kernel)
        output = h + keras.backend.dot(prev_output, self.recurrent_kernel)
        return output, output

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class NestedStateCell(keras.layers.AbstractRNNCell):
    """A cell whose state_size is nested: [units, [a_units, b_units]]."""

    def __init__(self, units, a_units, b_units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.a_units, self.b_units = units, a_units, b_units

    @property
    def state_size(self):
        return [self.units, [self.a_units, self.b_units]]

    @property
    def output_size(self):
        return self.units + self.a_units

    def build(self, input_shape):
        u, a, b = self.units, self.a_units, self.b_units
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], u))
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, u))
        self.a_kernel = self.add_weight(name="a_kernel", shape=(a, u))
        self.b_kernel = self.add_weight(name="b_kernel", shape=(b, u))
        self.bias = self.add_weight(name="bias", shape=(u,), initializer="zeros")
        self.a_out = self.add_weight(name="a_out", shape=(u, a))
        self.b_gate = self.add_weight(name="b_gate", shape=(u, b))
        self.built = True

    def call(self, inputs, states):
        h, (a, b) = states
        h_new = tf.tanh(
            inputs @ self.kernel
            + h @ self.recurrent_kernel
            + a @ self.a_kernel
            + b @ self.b_kernel
            + self.bias
        )
        a_new = 0.5 * a + tf.tanh(h_new @ self.a_out)
        b_new = b * tf.sigmoid(h_new @ self.b_gate)
        return tf.concat([h_new, a_new], axis=-1), [h_new, [a_new, b_new]]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "a_units": self.a_units,
            "b_units": self.b_units,
        }


class ConstantsCell(keras.layers.AbstractRNNCell):
    """h' = tanh(x K + h R + c C) with an external constant c (RNN(...)(x, constants=[c]))."""

    def __init__(self, units, constant_units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.constant_units = units, constant_units

    @property
    def state_size(self):
        return self.units

    def build(self, input_shape):
        # tf.keras 2 builds the cell from the step input shape only, without
        # the constants' shapes, hence the constant_units argument.
        u = self.units
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], u))
        self.recurrent_kernel = self.add_weight(name="recurrent_kernel", shape=(u, u))
        self.constant_kernel = self.add_weight(
            name="constant_kernel", shape=(self.constant_units, u)
        )
        self.built = True

    def call(self, inputs, states, constants):
        (c,) = constants
        h = tf.tanh(
            inputs @ self.kernel + states[0] @ self.recurrent_kernel + c @ self.constant_kernel
        )
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "constant_units": self.constant_units}


CUSTOM_CELLS = {
    "MinimalRNNCell": (MinimalRNNCell, MINIMAL_EQUATIONS),
    "NestedStateCell": (NestedStateCell, NESTED_EQUATIONS),
    "ConstantsCell": (ConstantsCell, CONSTANTS_EQUATIONS),
}

# --------------------------------------------------------------------------
# Case specifications
# --------------------------------------------------------------------------


def simple(units=2, **kw):
    args = {"units": units, "activation": "tanh", "use_bias": True}
    args.update(kw)
    return {"class": "SimpleRNNCell", "args": args}


def gru(units=3, reset_after=True, **kw):
    args = {
        "units": units,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "reset_after": reset_after,
    }
    args.update(kw)
    return {"class": "GRUCell", "args": args}


def lstm(units=3, **kw):
    args = {
        "units": units,
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "use_bias": True,
        "unit_forget_bias": True,
    }
    args.update(kw)
    return {"class": "LSTMCell", "args": args}


def custom(cls, **args):
    return {"class": cls, "args": args, "custom": True, "equations": CUSTOM_CELLS[cls][1]}


def stacked(*cells):
    return {"class": "StackedRNNCells", "cells": list(cells)}


# The input width of each base cell in the grid: never equal to units, so a
# transposed kernel cannot go unnoticed.
BASE_CELLS = [
    ("simple_rnn", lambda **kw: simple(2, **kw), 3),
    ("gru_reset_after", lambda **kw: gru(3, True, **kw), 2),
    ("gru_reset_before", lambda **kw: gru(3, False, **kw), 2),
    ("lstm", lambda **kw: lstm(3, **kw), 2),
]


def case(name, cell, description, **opts):
    spec = {
        "name": name,
        "description": description,
        "layer": "RNN",
        "cell": cell,
        "return_sequences": False,
        "return_state": False,
        "go_backwards": False,
        "stateful": False,
        "time_major": False,
        "zero_output_for_mask": False,
        "merge_mode": None,
        "mask": None,  # None, "standard" or "fully_masked_sample"
        "initial_state": False,
        "constants": False,
        "dropout_masks": False,  # the cell's args set dropout and recurrent_dropout; see "Dropout"
        "batch_size": 2,
        "timesteps": 4,
        "input_dim": 3,
        "x_scale": 1.0,
        "weight_scale": 1.0,
    }
    for key, value in opts.items():
        if key not in spec:
            raise KeyError(f"unknown case option {key!r}")
        spec[key] = value
    if spec["mask"] == "fully_masked_sample":
        spec["batch_size"] = 3  # the third sample is the fully masked one
    return spec


def flags(rs, st, gb):
    return f"{'seq' if rs else 'last'}_{'state' if st else 'nostate'}{'_backwards' if gb else ''}"


def build_cases():
    cases = []
    add = cases.append

    # A. every cell x return_sequences x return_state x go_backwards x mask
    for cname, make, dim in BASE_CELLS:
        for masked in (False, True):
            for rs in (False, True):
                for st in (False, True):
                    for gb in (False, True):
                        add(case(
                            f"grid_{cname}_{flags(rs, st, gb)}{'_mask' if masked else ''}",
                            make(),
                            "layer-option grid",
                            input_dim=dim, return_sequences=rs, return_state=st,
                            go_backwards=gb, mask="standard" if masked else None,
                        ))

    # B. explicit initial_state (gradients w.r.t. it are stored)
    for (cname, make, dim), gb, masked in zip(
        BASE_CELLS, (False, True, False, True), (True, True, False, True)
    ):
        add(case(
            f"init_{cname}_{flags(True, True, gb)}{'_mask' if masked else ''}",
            make(),
            "explicit initial_state (gradients w.r.t. it are stored)",
            input_dim=dim, return_sequences=True, return_state=True, go_backwards=gb,
            mask="standard" if masked else None, initial_state=True,
        ))

    # C. time_major=True: x (T, B, D), mask (T, B), sequence outputs (T, B, U)
    add(case("time_major_simple_rnn_seq_state_mask", simple(2),
             "time_major=True with a (T, B) mask", input_dim=3, return_sequences=True,
             return_state=True, time_major=True, mask="standard"))
    add(case("time_major_lstm_seq_state_backwards_mask_init", lstm(3),
             "time_major=True, go_backwards, (T, B) mask, initial_state", input_dim=2,
             return_sequences=True, return_state=True, go_backwards=True, time_major=True,
             mask="standard", initial_state=True))

    # D. stateful: two consecutive calls, the second one recorded
    add(case("stateful_simple_rnn_seq_state", simple(2), "stateful=True across two batches",
             input_dim=3, return_sequences=True, return_state=True, stateful=True))
    add(case("stateful_lstm_seq_state_mask", lstm(3), "stateful=True with the same mask on both calls",
             input_dim=2, return_sequences=True, return_state=True, stateful=True,
             mask="standard"))
    add(case("stateful_stacked_gru_lstm_last_state", stacked(gru(3), lstm(2)),
             "stateful StackedRNNCells (nested carried state)",
             input_dim=2, return_state=True, stateful=True))

    # E. StackedRNNCells: nested states [y, [h1, c1], h2]
    stacks = [
        ("lstm_simple", lambda: stacked(lstm(3), simple(2)), 2),
        ("gru_lstm", lambda: stacked(gru(3), lstm(2)), 2),
    ]
    for rs, (sname, make, dim) in enumerate(stacks):
        add(case(f"stacked_{sname}_{flags(rs, True, False)}", make(),
                 "StackedRNNCells with return_state (nested states)",
                 input_dim=dim, return_sequences=bool(rs), return_state=True))
    add(case("stacked_gru_lstm_seq_state_backwards_mask_init", stacks[1][1](),
             "StackedRNNCells, nested initial_state, mask, go_backwards",
             input_dim=2, return_sequences=True, return_state=True, go_backwards=True,
             mask="standard", initial_state=True))
    add(case("stacked_gru_reset_before_simple_last_state_mask", stacked(gru(2, False), simple(3)),
             "StackedRNNCells GRU(reset_after=False) + SimpleRNN, masked",
             input_dim=3, return_state=True, mask="standard"))

    # F. Bidirectional: every merge_mode x return_state x return_sequences
    for mode in ("concat", "sum", "mul", "ave", None):
        for rs in (False, True):
            for st in (False, True):
                add(case(f"bidi_{mode or 'none'}_lstm_{flags(rs, st, False)}", lstm(2),
                         f"Bidirectional merge_mode={mode!r}", layer="Bidirectional",
                         merge_mode=mode, input_dim=3, return_sequences=rs, return_state=st))
    add(case("bidi_concat_gru_seq_state_mask", gru(3), "Bidirectional with a mask (sequences)",
             layer="Bidirectional", merge_mode="concat", input_dim=2, return_sequences=True,
             return_state=True, mask="standard"))
    add(case("bidi_none_simple_rnn_last_state_mask_init", simple(2),
             "Bidirectional, mask, initial_state = forward states + backward states",
             layer="Bidirectional", merge_mode=None, input_dim=3, return_state=True,
             mask="standard", initial_state=True))
    add(case("bidi_mul_gru_reset_before_seq_state_init", gru(2, False),
             "Bidirectional mul with initial_state", layer="Bidirectional", merge_mode="mul",
             input_dim=3, return_sequences=True, return_state=True, initial_state=True))
    add(case("bidi_sum_stacked_lstm_simple_last_state", stacked(lstm(3), simple(2)),
             "Bidirectional over StackedRNNCells (nested states per direction)",
             layer="Bidirectional", merge_mode="sum", input_dim=2, return_state=True))

    # G. custom cells
    add(case("minimal_last", custom("MinimalRNNCell", units=3), "AbstractRNNCell docs example",
             input_dim=2))
    add(case("minimal_seq_state_backwards_mask", custom("MinimalRNNCell", units=3),
             "AbstractRNNCell docs example, masked, backwards", input_dim=2,
             return_sequences=True, return_state=True, go_backwards=True, mask="standard"))
    nested_cell = lambda: custom("NestedStateCell", units=4, a_units=2, b_units=3)  # noqa: E731
    add(case("nested_seq_state", nested_cell(), "nested state_size [4, [2, 3]]", input_dim=3,
             return_sequences=True, return_state=True))
    add(case("nested_last_state_mask_init", nested_cell(), "nested states, mask, initial_state",
             input_dim=3, return_state=True, mask="standard", initial_state=True))
    add(case("nested_stacked_with_lstm_seq_state", stacked(nested_cell(), lstm(2)),
             "StackedRNNCells([NestedStateCell, LSTMCell]): [y, [h, [a, b]], [h2, c2]]",
             input_dim=3, return_sequences=True, return_state=True))
    const_cell = lambda: custom("ConstantsCell", units=3, constant_units=2)  # noqa: E731
    add(case("constants_seq_state", const_cell(), "constants=[c]", input_dim=2,
             return_sequences=True, return_state=True, constants=True))
    add(case("constants_last_state_backwards_mask_init", const_cell(),
             "constants with mask, go_backwards and initial_state", input_dim=2,
             return_state=True, go_backwards=True, mask="standard", initial_state=True,
             constants=True))
    add(case("constants_bidi_concat_seq", const_cell(), "Bidirectional with constants",
             layer="Bidirectional", merge_mode="concat", input_dim=2, return_sequences=True,
             constants=True))

    # H. recurrent_activation="hard_sigmoid" (clip(0.2 z + 0.5, 0, 1)), large inputs
    hs = {"recurrent_activation": "hard_sigmoid"}
    add(case("hard_sigmoid_lstm_seq_state", lstm(3, **hs), "hard_sigmoid gates, some clipped",
             input_dim=2, return_sequences=True, return_state=True, x_scale=2.5, weight_scale=2.0))
    add(case("hard_sigmoid_gru_reset_after_seq_state", gru(3, True, **hs),
             "hard_sigmoid gates, some clipped", input_dim=2, return_sequences=True,
             return_state=True, x_scale=2.5, weight_scale=2.0))
    add(case("hard_sigmoid_gru_reset_before_last_state_mask", gru(3, False, **hs),
             "hard_sigmoid gates, some clipped, masked", input_dim=2,
             return_state=True, mask="standard", x_scale=2.5, weight_scale=2.0))

    # I. variants: no bias, another activation, zero_output_for_mask, a fully masked sample
    for cname, make, dim in BASE_CELLS[1::2]:  # GRU(reset_after=True) and LSTM
        add(case(f"no_bias_{cname}_seq_state", make(use_bias=False), "use_bias=False",
                 input_dim=dim, return_sequences=True, return_state=True))
    add(case("relu_simple_rnn_seq_state", simple(2, activation="relu"), "activation='relu'",
             input_dim=3, return_sequences=True, return_state=True))
    add(case("zero_output_lstm_seq_state_mask", lstm(3), "zero_output_for_mask=True",
             input_dim=2, return_sequences=True, return_state=True, mask="standard",
             zero_output_for_mask=True))
    add(case("zero_output_gru_reset_after_last_state_mask", gru(3), "zero_output_for_mask=True, "
             "last output only (a trailing masked step gives a zero last output)",
             input_dim=2, return_state=True, mask="standard", zero_output_for_mask=True))
    add(case("fully_masked_sample_lstm_seq_state_init", lstm(3),
             "one sample masked at every step: its states stay the initial ones",
             input_dim=2, return_sequences=True, return_state=True,
             mask="fully_masked_sample", initial_state=True))

    # J. dropout with given masks (see "Dropout"): every cell, with sequence masks, states and go_backwards
    for cname, make, dim in BASE_CELLS:
        add(case(f"dropout_{cname}_seq_state", make(dropout=0.5, recurrent_dropout=0.25),
                 "dropout=0.5, recurrent_dropout=0.25 with given masks, training=True",
                 input_dim=dim, return_sequences=True, return_state=True, dropout_masks=True, batch_size=3))
    add(case("dropout_lstm_seq_state_mask_backwards_init", lstm(3, dropout=0.25, recurrent_dropout=0.5),
             "dropout with given masks, a sequence mask, go_backwards and an initial state",
             input_dim=2, return_sequences=True, return_state=True, go_backwards=True, mask="standard",
             initial_state=True, dropout_masks=True, batch_size=3))
    add(case("dropout_gru_reset_before_last_state_mask", gru(3, False, dropout=0.25, recurrent_dropout=0.5),
             "dropout with given masks and a sequence mask, last output only",
             input_dim=2, return_state=True, mask="standard", dropout_masks=True, batch_size=3))
    add(case("dropout_simple_rnn_seq_mask_time_major", simple(2, dropout=0.5, recurrent_dropout=0.5),
             "dropout with given masks, a sequence mask, time_major",
             input_dim=3, return_sequences=True, time_major=True, mask="standard", dropout_masks=True,
             batch_size=3))

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"
    return cases


# --------------------------------------------------------------------------
# Building and running one case
# --------------------------------------------------------------------------


def make_cell(spec):
    cls = spec["class"]
    if cls == "StackedRNNCells":
        return keras.layers.StackedRNNCells([make_cell(s) for s in spec["cells"]])
    if cls in CUSTOM_CELLS:
        return CUSTOM_CELLS[cls][0](**spec["args"])
    return getattr(keras.layers, cls)(**spec["args"])


def make_layer(c):
    rnn = keras.layers.RNN(
        make_cell(c["cell"]),
        return_sequences=c["return_sequences"],
        return_state=c["return_state"],
        go_backwards=c["go_backwards"],
        stateful=c["stateful"],
        time_major=c["time_major"],
        zero_output_for_mask=c["zero_output_for_mask"],
    )
    if c["layer"] == "Bidirectional":
        return keras.layers.Bidirectional(rnn, merge_mode=c["merge_mode"])
    return rnn


def plain(value):
    """State sizes as nested lists of ints (tuples and TensorShapes become lists)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, tf.TensorShape):
        return value.as_list()[0] if value.rank == 1 else value.as_list()
    return int(value)


def state_template(cell):
    """The nested list of state sizes that RNN(cell) takes as initial_state."""
    size = plain(cell.state_size)
    return size if isinstance(size, list) else [size]


def structure_of(value, counter=None):
    """Nested list of leaf indices, depth-first, the order tf.nest.flatten uses."""
    counter = [0] if counter is None else counter
    if isinstance(value, (list, tuple)):
        return [structure_of(v, counter) for v in value]
    counter[0] += 1
    return counter[0] - 1


def pack(structure, leaves):
    if isinstance(structure, list):
        return [pack(s, leaves) for s in structure]
    return leaves[structure]


def flatten(value):
    return [v for v in tf.nest.flatten(value)]


def make_mask(kind, batch, steps, time_major):
    mask = np.ones((batch, steps), dtype=bool)
    mask[0, 0] = mask[0, -1] = False  # a leading and a trailing masked step
    mask[1, steps // 2] = False  # a masked step in the middle
    if kind == "fully_masked_sample":
        mask[2, :] = False  # every step of the third sample masked
    return mask.T.copy() if time_major else mask


def quantize(a):
    """Round to a multiple of 2**-10: still non-trivial values, exact in float64,
    and their zero low mantissa bytes compress well (fixtures stay small)."""
    return np.round(np.asarray(a, dtype=np.float64) * 1024.0) / 1024.0


def random_weight(rng, name, shape, scale):
    if name.split("/")[-1].startswith("bias"):
        return quantize(rng.uniform(-0.5, 0.5, size=shape) * scale)
    fan_in = shape[0] if len(shape) > 1 else 1
    return quantize(rng.uniform(-1.0, 1.0, size=shape) * scale / np.sqrt(fan_in))


class Run:
    """One case: the layer with its weights set, and the fixed random arrays."""

    def __init__(self, c):
        self.c = c
        keras.backend.clear_session()
        keras.backend.set_floatx("float64")
        self.seed = zlib.crc32(c["name"].encode())
        # spawn(6)'s first five children are spawn(5)'s: the cases before dropout stay as they were
        rng_w, rng_x, rng_s, rng_c, rng_p, rng_d = (
            np.random.default_rng(s) for s in np.random.SeedSequence(self.seed).spawn(6)
        )
        b, t, d = c["batch_size"], c["timesteps"], c["input_dim"]
        xshape = (t, b, d) if c["time_major"] else (b, t, d)
        self.x = quantize(rng_x.normal(size=xshape) * c["x_scale"])
        self.x_first = quantize(rng_x.normal(size=xshape) * c["x_scale"]) if c["stateful"] else None
        self.mask = make_mask(c["mask"], b, t, c["time_major"]) if c["mask"] else None
        self.layer = make_layer(c)
        rnn = self.layer.forward_layer if c["layer"] == "Bidirectional" else self.layer
        self.dropout_masks = None
        if c["dropout_masks"]:
            args = c["cell"]["args"]
            keep = lambda rate, size: (rng_d.random((b, size)) >= rate) / (1.0 - rate)
            self.dropout_masks = [keep(args["dropout"], d), keep(args["recurrent_dropout"], args["units"])]
            self.use_dropout_masks(*self.dropout_masks)
        template = state_template(rnn.cell)
        if c["layer"] == "Bidirectional":
            template = template + template  # forward states, then backward states
        self.state_structure = structure_of(template)
        state_sizes = tf.nest.flatten(template)
        self.initial_state = (
            [quantize(rng_s.uniform(-0.8, 0.8, size=(b, n))) for n in state_sizes]
            if c["initial_state"] else None
        )
        if c["constants"]:
            self.constants = [quantize(rng_c.normal(size=(b, c["cell"]["args"]["constant_units"])))]
        else:
            self.constants = None
        # build with a first call, then set the weights explicitly
        self.call(self.x)
        names = [w.name for w in self.layer.weights]
        self.weights = [
            random_weight(rng_w, w.name, tuple(w.shape), c["weight_scale"])
            for w in self.layer.weights
        ]
        self.layer.set_weights(self.weights)
        self.reset()
        self.weight_names = names
        # probes, shaped like the outputs
        out = self.call(self.x)
        self.reset()
        self.output_structure = structure_of(out)
        self.probes = [quantize(rng_p.normal(size=tuple(o.shape))) for o in flatten(out)]

    def use_dropout_masks(self, m_x, m_h):
        """Make the Keras cell use the masks m_x (B, D) and m_h (B, U), one for every gate."""
        cell = self.layer.cell
        for method, m in (("get_dropout_mask_for_cell", m_x), ("get_recurrent_dropout_mask_for_cell", m_h)):
            mask = tf.constant(m)
            setattr(cell, method, lambda inputs, training, count=1, mask=mask: mask if count == 1 else [mask] * count)

    def check_ones_masks_change_nothing(self):
        """All-ones masks (per-gate masks, implementation=1) give the cell without dropout (implementation=2)."""
        args = {**self.c["cell"]["args"], "dropout": 0.0, "recurrent_dropout": 0.0}
        plain = Run({**self.c, "dropout_masks": False, "cell": {**self.c["cell"], "args": args}})  # same weights
        expected = [o.numpy() for o in flatten(plain.call(self.x))]
        ones = Run(self.c)
        ones.use_dropout_masks(*(np.ones_like(m) for m in self.dropout_masks))
        for got, want in zip([o.numpy() for o in flatten(ones.call(self.x))], expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)

    def reset(self):
        if self.c["stateful"]:
            self.layer.reset_states()

    def state_vars(self):
        if not self.c["stateful"]:
            return []
        layers = (
            [self.layer.forward_layer, self.layer.backward_layer]
            if self.c["layer"] == "Bidirectional" else [self.layer]
        )
        return [v for lay in layers for v in tf.nest.flatten(lay.states)]

    def call(self, x, initial_state=None, constants=None, mask=None, training=None):
        """Call the layer; tensors default to the case's own arrays (training=True in dropout cases)."""
        kwargs = {}
        if training is not None or self.c["dropout_masks"]:
            kwargs["training"] = self.c["dropout_masks"] if training is None else training
        mask = self.mask if mask is None else mask
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        init = self.initial_state if initial_state is None else initial_state
        if init is not None:
            leaves = [tf.convert_to_tensor(s) for s in init]
            kwargs["initial_state"] = pack(self.state_structure, leaves)
        consts = self.constants if constants is None else constants
        if consts is not None:
            kwargs["constants"] = [tf.convert_to_tensor(v) for v in consts]
        return self.layer(tf.convert_to_tensor(x), **kwargs)

    def loss(self, out):
        return tf.add_n([
            tf.reduce_sum(tf.constant(p) * o) for p, o in zip(self.probes, flatten(out))
        ])

    def forward_loss(self, weights=None, x=None, initial_state=None, constants=None,
                     carried=None):
        """L of the recorded call as a plain number (for finite differences).

        Stateful cases: the first call runs with the stored weights, so the
        state it carries over does not depend on the perturbed weights (the
        tape records the second call only); carried replaces that state."""
        self.layer.set_weights(self.weights)
        self.reset()
        if self.c["stateful"]:
            self.call(self.x_first)
            if carried is not None:
                for v, val in zip(self.state_vars(), carried):
                    v.assign(val)
        if weights is not None:
            self.layer.set_weights(weights)
        out = self.call(self.x if x is None else x, initial_state, constants)
        value = float(self.loss(out).numpy())
        self.layer.set_weights(self.weights)
        return value

    def record(self):
        """Outputs and tape gradients of the recorded call."""
        self.layer.set_weights(self.weights)
        self.reset()
        first_out, carried = None, None
        if self.c["stateful"]:
            first_out = [o.numpy() for o in flatten(self.call(self.x_first))]
            carried = [v.numpy() for v in self.state_vars()]
        xt = tf.constant(self.x)
        st = [tf.constant(s) for s in self.initial_state] if self.initial_state else []
        ct = [tf.constant(v) for v in self.constants] if self.constants else []
        svars = self.state_vars()
        with tf.GradientTape() as tape:
            tape.watch([xt] + st + ct + svars)
            out = self.call(xt, st or None, ct or None)
            loss = self.loss(out)
        sources = list(self.layer.weights) + [xt] + st + ct + svars
        grads = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        grads = [g.numpy() for g in grads]
        nw, ns, nc = len(self.weights), len(st), len(ct)
        result = {
            "out": out,
            "outputs": [o.numpy() for o in flatten(out)],
            "grad_weights": grads[:nw],
            "grad_x": grads[nw],
            "grad_initial_state": grads[nw + 1:nw + 1 + ns],
            "grad_constants": grads[nw + 1 + ns:nw + 1 + ns + nc],
            "grad_carried": grads[nw + 1 + ns + nc:],
            "first_outputs": first_out,
            "carried": carried,
            "loss": float(loss.numpy()),
        }
        self.reset()
        return result


def output_roles(c, n_state_leaves):
    """What each flattened output leaf is, in the order of output_i."""
    if c["layer"] == "Bidirectional":
        half = n_state_leaves // 2
        heads = ["output_forward", "output_backward"] if c["merge_mode"] is None else ["output"]
        if not c["return_state"]:
            return heads
        return (heads + [f"state_forward_{k}" for k in range(half)]
                + [f"state_backward_{k}" for k in range(half)])
    if not c["return_state"]:
        return ["output"]
    return ["output"] + [f"state_{k}" for k in range(n_state_leaves)]


def hard_sigmoid_fraction(run):
    """Fraction of recurrent-activation pre-activations inside (-2.5, 2.5)."""
    rnn = run.layer
    cell = rnn.cell
    seen = []
    original = cell.recurrent_activation

    def spy(z):
        seen.append(np.asarray(z).ravel())
        return original(z)

    cell.recurrent_activation = spy
    try:
        run.call(run.x)
    finally:
        cell.recurrent_activation = original
    z = np.concatenate(seen)
    return float(np.mean(np.abs(z) < 2.5)), int(z.size)


def versions():
    return {
        "script": "tests/golden/make_golden.py",
        "tensorflow": tf.__version__,
        "tf_keras": keras.__version__,
        "numpy": np.__version__,
    }


def cell_config(spec, cell):
    out = {k: v for k, v in spec.items() if k != "cells"}
    out.setdefault("custom", False)
    if spec["class"] == "StackedRNNCells":
        out["cells"] = [cell_config(s, sub) for s, sub in zip(spec["cells"], cell.cells)]
    out["state_size"] = state_template(cell)
    return out


def make_fixture(c):
    run = Run(c)
    rec = run.record()
    rnn = run.layer.forward_layer if c["layer"] == "Bidirectional" else run.layer
    n_state_leaves = len(tf.nest.flatten(run.state_structure))
    arrays = {}
    config = {
        "format_version": FORMAT_VERSION,
        "name": c["name"],
        "description": c["description"],
        "layer": c["layer"],
        "cell": cell_config(c["cell"], rnn.cell),
        "rnn": {
            "return_sequences": c["return_sequences"],
            "return_state": c["return_state"],
            "go_backwards": c["go_backwards"],
            "stateful": c["stateful"],
            "time_major": c["time_major"],
            "unroll": False,
            "zero_output_for_mask": c["zero_output_for_mask"],
        },
        "effective_zero_output_for_mask": bool(rnn.zero_output_for_mask),
        "bidirectional": (
            {"merge_mode": c["merge_mode"],
             "backward_go_backwards": bool(run.layer.backward_layer.go_backwards)}
            if c["layer"] == "Bidirectional" else None
        ),
        "has_mask": run.mask is not None,
        "mask_kind": c["mask"],
        "has_initial_state": run.initial_state is not None,
        "has_constants": run.constants is not None,
        "stateful_calls": 2 if c["stateful"] else 1,
        "batch_size": c["batch_size"],
        "timesteps": c["timesteps"],
        "input_dim": c["input_dim"],
        "dtype": "float64",
        "n_weights": len(run.weights),
        "weight_names": run.weight_names,
        "n_outputs": len(rec["outputs"]),
        "output_structure": run.output_structure,
        "output_roles": output_roles(c, n_state_leaves),
        "state_structure": run.state_structure,
        "n_initial_state": len(run.initial_state or []),
        "n_constants": len(run.constants or []),
        "n_carried_state": len(rec["carried"] or []),
        "loss": LOSS,
        "loss_value": rec["loss"],
        "seed": run.seed,
        "generator": versions(),
    }
    if c["dropout_masks"]:
        config["dropout_masks"] = True  # only here: the fixtures without dropout stay as they were
        run.check_ones_masks_change_nothing()
    if c["cell"].get("args", {}).get("recurrent_activation") == "hard_sigmoid":
        frac, count = hard_sigmoid_fraction(run)
        config["hard_sigmoid_linear_fraction"] = frac
        if not 0.1 < frac < 0.9:
            raise AssertionError(f"{c['name']}: {frac:.2f} of {count} pre-activations linear")
    arrays["config"] = np.array(json.dumps(config, sort_keys=True))
    arrays["x"] = run.x
    if run.mask is not None:
        arrays["mask"] = run.mask
    if c["stateful"]:
        arrays["x_first"] = run.x_first
        if run.mask is not None:
            arrays["mask_first"] = run.mask
    for i, s in enumerate(run.initial_state or []):
        arrays[f"initial_state_{i}"] = s
    for i, v in enumerate(run.constants or []):
        arrays[f"constant_{i}"] = v
    if run.dropout_masks is not None:
        arrays["dropout_mask"], arrays["recurrent_dropout_mask"] = run.dropout_masks
    for i, w in enumerate(run.weights):
        arrays[f"weight_{i}"] = w
    for i, o in enumerate(rec["outputs"]):
        arrays[f"output_{i}"] = o
    for i, p in enumerate(run.probes):
        arrays[f"probe_{i}"] = p
    for i, g in enumerate(rec["grad_weights"]):
        arrays[f"grad_weight_{i}"] = g
    arrays["grad_x"] = rec["grad_x"]
    for i, g in enumerate(rec["grad_initial_state"]):
        arrays[f"grad_initial_state_{i}"] = g
    for i, g in enumerate(rec["grad_constants"]):
        arrays[f"grad_constant_{i}"] = g
    if c["stateful"]:
        for i, o in enumerate(rec["first_outputs"]):
            arrays[f"first_output_{i}"] = o
        for i, s in enumerate(rec["carried"]):
            arrays[f"carried_state_{i}"] = s
        for i, g in enumerate(rec["grad_carried"]):
            arrays[f"grad_carried_state_{i}"] = g
    return arrays, run, rec


# --------------------------------------------------------------------------
# Writing, reloading, checking
# --------------------------------------------------------------------------


def write_npz(path, arrays):
    """Like np.savez_compressed, with fixed timestamps: reruns are byte-identical."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    os.replace(tmp, path)


def expected_keys(cfg):
    keys = {"config", "x", "grad_x"}
    if cfg["has_mask"]:
        keys.add("mask")
    if cfg.get("dropout_masks"):
        keys |= {"dropout_mask", "recurrent_dropout_mask"}
    if cfg["stateful_calls"] == 2:
        keys.add("x_first")
        if cfg["has_mask"]:
            keys.add("mask_first")
        keys |= {f"first_output_{i}" for i in range(cfg["n_outputs"])}
        keys |= {f"carried_state_{i}" for i in range(cfg["n_carried_state"])}
        keys |= {f"grad_carried_state_{i}" for i in range(cfg["n_carried_state"])}
    keys |= {f"initial_state_{i}" for i in range(cfg["n_initial_state"])}
    keys |= {f"grad_initial_state_{i}" for i in range(cfg["n_initial_state"])}
    keys |= {f"constant_{i}" for i in range(cfg["n_constants"])}
    keys |= {f"grad_constant_{i}" for i in range(cfg["n_constants"])}
    keys |= {f"weight_{i}" for i in range(cfg["n_weights"])}
    keys |= {f"grad_weight_{i}" for i in range(cfg["n_weights"])}
    keys |= {f"output_{i}" for i in range(cfg["n_outputs"])}
    keys |= {f"probe_{i}" for i in range(cfg["n_outputs"])}
    return keys


def leaves_of(structure):
    if isinstance(structure, list):
        return [i for s in structure for i in leaves_of(s)]
    return [structure]


def verify_file(path, c):
    """Reload one fixture and check its keys, dtypes, shapes and structures."""
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    cfg = json.loads(str(data["config"]))
    name = cfg["name"]
    assert name == c["name"], name
    assert set(data) == expected_keys(cfg), (name, sorted(set(data) ^ expected_keys(cfg)))
    for key, value in data.items():
        if key == "config":
            continue
        if key.startswith("mask"):
            assert value.dtype == np.bool_, (name, key)
        else:
            assert value.dtype == np.float64, (name, key, value.dtype)
            assert np.all(np.isfinite(value)), (name, key)
    n = cfg["n_outputs"]
    assert sorted(leaves_of(cfg["output_structure"])) == list(range(n)), name
    assert leaves_of(cfg["output_structure"]) == list(range(n)), name  # depth-first order
    assert len(cfg["output_roles"]) == n, name
    for i in range(n):
        assert data[f"probe_{i}"].shape == data[f"output_{i}"].shape, (name, i)
    for i in range(cfg["n_weights"]):
        assert data[f"grad_weight_{i}"].shape == data[f"weight_{i}"].shape, (name, i)
    assert data["grad_x"].shape == data["x"].shape, name
    for i in range(cfg["n_initial_state"]):
        assert data[f"grad_initial_state_{i}"].shape == data[f"initial_state_{i}"].shape
    for i in range(cfg["n_constants"]):
        assert data[f"grad_constant_{i}"].shape == data[f"constant_{i}"].shape
    if cfg["has_mask"]:
        b, t = cfg["batch_size"], cfg["timesteps"]
        assert data["mask"].shape == ((t, b) if cfg["rnn"]["time_major"] else (b, t)), name
    # the state leaves returned have the sizes of the state structure
    if cfg["rnn"]["return_state"]:
        sizes = tf.nest.flatten(
            state_sizes_from_cfg(cfg)
        )
        state_shapes = [data[f"output_{i}"].shape for i, r in enumerate(cfg["output_roles"])
                        if r.startswith("state")]
        assert [s[-1] for s in state_shapes] == sizes, (name, state_shapes, sizes)
    if cfg["stateful_calls"] == 2:
        sizes = tf.nest.flatten(state_sizes_from_cfg(cfg))
        assert cfg["n_carried_state"] == len(sizes), name
        for i, size in enumerate(sizes):
            assert data[f"carried_state_{i}"].shape == (cfg["batch_size"], size), (name, i)
        for i in range(n):
            assert data[f"first_output_{i}"].shape == data[f"output_{i}"].shape, (name, i)
    roles = cfg["output_roles"]
    assert any(r.startswith("state") for r in roles) == cfg["rnn"]["return_state"], name
    if cfg["has_initial_state"]:
        sizes = tf.nest.flatten(state_sizes_from_cfg(cfg))
        assert cfg["n_initial_state"] == len(leaves_of(cfg["state_structure"])) == len(sizes)
        for i, size in enumerate(sizes):
            assert data[f"initial_state_{i}"].shape == (cfg["batch_size"], size), (name, i)
    # the stored loss is reproduced from the stored outputs and probes
    loss = sum(float(np.sum(data[f"probe_{i}"] * data[f"output_{i}"])) for i in range(n))
    assert abs(loss - cfg["loss_value"]) <= 1e-12 * (1 + abs(loss)), name
    return cfg, os.path.getsize(path)


def state_sizes_from_cfg(cfg):
    sizes = cfg["cell"]["state_size"]
    return sizes + sizes if cfg["layer"] == "Bidirectional" else sizes


def finite_difference_check(c, path, eps=1e-6, rtol=1e-6, atol=1e-8):
    """The stored tape gradients against central differences of L computed
    with tf.keras forward passes; also checks that regenerating the case
    reproduces the stored file's arrays bit for bit."""
    arrays, run, _ = make_fixture(c)
    with np.load(path, allow_pickle=False) as f:
        stored = {k: f[k] for k in f.files}
    assert set(stored) == set(arrays), c["name"]
    for key, value in arrays.items():
        if key != "config" and not np.array_equal(stored[key], value):
            raise AssertionError(f"{c['name']}: regenerated {key} differs from {path}")

    def listed(prefix, n):
        return [stored[f"{prefix}_{i}"] for i in range(n)]

    cfg = json.loads(str(stored["config"]))
    rec = {
        "grad_weights": listed("grad_weight", cfg["n_weights"]),
        "grad_x": stored["grad_x"],
        "grad_initial_state": listed("grad_initial_state", cfg["n_initial_state"]),
        "grad_constants": listed("grad_constant", cfg["n_constants"]),
        "carried": listed("carried_state", cfg["n_carried_state"]),
        "grad_carried": listed("grad_carried_state", cfg["n_carried_state"]),
    }
    worst = 0.0
    groups = [("weight", run.weights, rec["grad_weights"]), ("x", [run.x], [rec["grad_x"]])]
    if run.initial_state:
        groups.append(("initial_state", run.initial_state, rec["grad_initial_state"]))
    if run.constants:
        groups.append(("constant", run.constants, rec["grad_constants"]))
    if rec["carried"]:
        groups.append(("carried_state", rec["carried"], rec["grad_carried"]))
    count = 0
    for kind, values, grads in groups:
        for i, (value, grad) in enumerate(zip(values, grads)):
            for idx in np.ndindex(value.shape):
                def at(delta):
                    arrs = [v.copy() for v in values]
                    arrs[i][idx] += delta
                    if kind == "weight":
                        return run.forward_loss(weights=arrs)
                    if kind == "x":
                        return run.forward_loss(x=arrs[0])
                    if kind == "initial_state":
                        return run.forward_loss(initial_state=arrs)
                    if kind == "constant":
                        return run.forward_loss(constants=arrs)
                    return run.forward_loss(carried=arrs)
                fd = (at(eps) - at(-eps)) / (2 * eps)
                err = abs(fd - grad[idx])
                worst = max(worst, err / (atol + rtol * abs(grad[idx])))
                count += 1
                if err > atol + rtol * abs(grad[idx]):
                    raise AssertionError(
                        f"{c['name']}: d L / d {kind}_{i}{list(idx)}: tape {grad[idx]!r}, "
                        f"finite differences {fd!r}"
                    )
    return count, worst


FD_DEFAULT = [
    "grid_lstm_seq_state_backwards_mask",
    "grid_gru_reset_before_seq_state_mask",
    "init_gru_reset_after_seq_state_backwards_mask",
    "time_major_lstm_seq_state_backwards_mask_init",
    "stateful_lstm_seq_state_mask",
    "stateful_stacked_gru_lstm_last_state",
    "stacked_gru_lstm_seq_state_backwards_mask_init",
    "bidi_none_simple_rnn_last_state_mask_init",
    "nested_last_state_mask_init",
    "constants_last_state_backwards_mask_init",
    "hard_sigmoid_lstm_seq_state",
    "dropout_lstm_seq_state_mask_backwards_init",
    "dropout_gru_reset_before_last_state_mask",
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help="fixture folder (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the case names and exit")
    parser.add_argument("--verify-only", action="store_true",
                        help="do not regenerate: reload the fixtures in --out and check them")
    parser.add_argument("--fd", nargs="*", metavar="CASE", default=None,
                        help="also check tape gradients against central finite differences "
                             "(no names: a representative set; 'all': every case)")
    args = parser.parse_args(argv)

    keras.backend.set_floatx("float64")
    cases = build_cases()
    if args.list:
        print("\n".join(c["name"] for c in cases))
        return 0
    os.makedirs(args.out, exist_ok=True)
    wanted = {c["name"] + ".npz" for c in cases}
    if not args.verify_only:
        for stale in sorted(set(os.listdir(args.out)) - wanted - {"MANIFEST.json"}):
            if stale.endswith(".npz"):
                os.remove(os.path.join(args.out, stale))
        for c in cases:
            arrays, _, _ = make_fixture(c)
            write_npz(os.path.join(args.out, c["name"] + ".npz"), arrays)
    total, manifest = 0, {}
    for c in cases:
        path = os.path.join(args.out, c["name"] + ".npz")
        _, size = verify_file(path, c)
        total += size
        with open(path, "rb") as fh:
            manifest[c["name"]] = {
                "file": c["name"] + ".npz",
                "sha256": hashlib.sha256(fh.read()).hexdigest(),
                "bytes": size,
            }
    extra = sorted(n for n in os.listdir(args.out) if n.endswith(".npz") and n not in wanted)
    if extra:
        raise AssertionError(f"fixtures of no case in {args.out}: {extra}")
    manifest_path = os.path.join(args.out, "MANIFEST.json")
    if args.verify_only:
        with open(manifest_path) as fh:
            if json.load(fh)["cases"] != manifest:
                raise AssertionError(f"{manifest_path} does not describe the files next to it")
    else:
        with open(manifest_path, "w") as fh:
            json.dump({"format_version": FORMAT_VERSION, "generator": versions(),
                       "loss": LOSS, "cases": manifest}, fh, indent=1, sort_keys=True)
            fh.write("\n")
    print(f"{len(cases)} fixtures in {args.out}: {total} bytes; keys, shapes and losses verified")
    if args.fd is not None:
        by_name = {c["name"]: c for c in cases}
        names = FD_DEFAULT if not args.fd else (list(by_name) if args.fd == ["all"] else args.fd)
        for name in names:
            path = os.path.join(args.out, name + ".npz")
            count, worst = finite_difference_check(by_name[name], path)
            print(f"  finite differences {name}: {count} entries agree "
                  f"(worst error {worst:.2g} of the tolerance)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
