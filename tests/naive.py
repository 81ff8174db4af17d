"""Slow, obviously correct references, written from the equations in DESIGN.md.

Nothing here imports rnnlab.  Every function works one sample and one unit at
a time with Python floats, so it is easy to check by eye against the equations.
"""

import math

import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


ACTIVATIONS = {
    "tanh": math.tanh,
    "sigmoid": sigmoid,
    "relu": lambda v: max(v, 0.0),
    "hard_sigmoid": lambda v: min(max(0.2 * v + 0.5, 0.0), 1.0),  # tf.keras 2
    "hard_sigmoid_keras3": lambda v: min(max(v / 6.0 + 0.5, 0.0), 1.0),
    "linear": lambda v: v,
    "g": lambda v: v + 0.5 if v >= 0 else sigmoid(v),  # minGRU's and minLSTM's positive candidate (Feng et al.)
}


def affine(x, W, column):
    """sum_k x[k] * W[k, column]."""
    return sum(float(x[k]) * float(W[k, column]) for k in range(len(x)))


def dropped(values, mask):
    """values[k] * mask[k] (a dropout mask of one sample), or the values themselves without one."""
    return values if mask is None else [float(v) * float(m) for v, m in zip(values, mask)]


def simple_rnn_step(x, h, K, R, b, act="tanh", m_x=None, m_h=None):
    """One sample: h'[j] = act(sum_k x[k] K[k,j] + sum_k h[k] R[k,j] + b[j]).

    With dropout masks m_x, m_h (tf.keras 2): x and h are multiplied by them first.
    """
    f = ACTIVATIONS[act]
    x, h = dropped(x, m_x), dropped(h, m_h)
    units = R.shape[0]
    h_new = [f(affine(x, K, j) + affine(h, R, j) + (0.0 if b is None else float(b[j]))) for j in range(units)]
    return h_new, [h_new]


def gru_step(x, h, K, R, bias, reset_after=True, act="tanh", rec_act="sigmoid", m_x=None, m_h=None):
    """One sample of Keras GRU; gate order z, r, h.

    With dropout masks (tf.keras 2): x * m_x everywhere, h * m_h in every
    product with R, and the unmasked h in the blend z h + (1 - z) hh.
    """
    f, g = ACTIVATIONS[act], ACTIVATIONS[rec_act]
    x, h_in = dropped(x, m_x), dropped(h, m_h)
    u = R.shape[0]
    if bias is None:
        b_in, b_rec = [0.0] * 3 * u, [0.0] * 3 * u
    elif reset_after:
        b_in, b_rec = list(bias[0]), list(bias[1])
    else:
        b_in, b_rec = list(bias), [0.0] * 3 * u
    z = [g(affine(x, K, j) + b_in[j] + affine(h_in, R, j) + b_rec[j]) for j in range(u)]
    r = [g(affine(x, K, u + j) + b_in[u + j] + affine(h_in, R, u + j) + b_rec[u + j]) for j in range(u)]
    if reset_after:
        hh = [f(affine(x, K, 2 * u + j) + b_in[2 * u + j] + r[j] * (affine(h_in, R, 2 * u + j) + b_rec[2 * u + j]))
              for j in range(u)]
    else:
        rh = [r[k] * float(h_in[k]) for k in range(u)]
        hh = [f(affine(x, K, 2 * u + j) + b_in[2 * u + j] + affine(rh, R, 2 * u + j)) for j in range(u)]
    h_new = [z[j] * float(h[j]) + (1 - z[j]) * hh[j] for j in range(u)]
    return h_new, [h_new]


def lstm_step(x, h, c, K, R, b, act="tanh", rec_act="sigmoid", m_x=None, m_h=None):
    """One sample of Keras LSTM; gate order i, f, c, o; state [h, c].

    With dropout masks m_x, m_h (tf.keras 2): x and h are multiplied by them first; c never.
    """
    f_act, g = ACTIVATIONS[act], ACTIVATIONS[rec_act]
    x, h = dropped(x, m_x), dropped(h, m_h)
    u = R.shape[0]

    def pre(j):
        return affine(x, K, j) + affine(h, R, j) + (0.0 if b is None else float(b[j]))

    i = [g(pre(j)) for j in range(u)]
    f = [g(pre(u + j)) for j in range(u)]
    cand = [f_act(pre(2 * u + j)) for j in range(u)]
    o = [g(pre(3 * u + j)) for j in range(u)]
    c_new = [f[j] * float(c[j]) + i[j] * cand[j] for j in range(u)]
    h_new = [o[j] * f_act(c_new[j]) for j in range(u)]
    return h_new, [h_new, c_new]


def min_gru_step(x, h, K, b, act="linear"):
    """One sample of minGRU (Feng et al. 2024); blocks z, h~ of K; no recurrent weight.

    z[j] = sigmoid(x K_z + b_z), hh[j] = act(x K_h + b_h), h'[j] = (1 - z[j]) h[j] + z[j] hh[j].
    """
    f = ACTIVATIONS[act]
    u = K.shape[1] // 2

    def pre(j):
        return affine(x, K, j) + (0.0 if b is None else float(b[j]))

    z = [sigmoid(pre(j)) for j in range(u)]
    hh = [f(pre(u + j)) for j in range(u)]
    h_new = [(1 - z[j]) * float(h[j]) + z[j] * hh[j] for j in range(u)]
    return h_new, [h_new]


def min_lstm_step(x, h, K, b, act="linear"):
    """One sample of minLSTM (Feng et al. 2024); blocks f, i, h~ of K; no recurrent weight.

    f, i = sigmoid(...), normalised f' = f / (f + i), i' = i / (f + i); h'[j] = f'[j] h[j] + i'[j] hh[j].
    """
    g = ACTIVATIONS[act]
    u = K.shape[1] // 3

    def pre(j):
        return affine(x, K, j) + (0.0 if b is None else float(b[j]))

    h_new = []
    for j in range(u):
        f, i, hh = sigmoid(pre(j)), sigmoid(pre(u + j)), g(pre(2 * u + j))
        h_new.append(f / (f + i) * float(h[j]) + i / (f + i) * hh)
    return h_new, [h_new]


# -- which reference computes which cell --------------------------------------------------------
#
# A new cell adds its step function above and one entry to each table below; every test that
# loops over cell kinds then covers it.  Still no rnnlab here: the tables name classes by string
# and read only a cell's get_config() and get_weights().

#: kind -> (class name, constructor arguments besides units, dtype and seed): the example cells the
#: tests use, with non-default biases so that biases matter.
EXAMPLES = {
    "simple": ("SimpleRNNCell", dict(bias_initializer="normal")),
    "gru": ("GRUCell", dict(bias_initializer="normal")),
    "gru_reset_before": ("GRUCell", dict(reset_after=False, bias_initializer="normal")),
    "lstm": ("LSTMCell", dict(bias_initializer="normal")),
    "minimal": ("MinimalRNNCell", {}),
    "min_gru": ("MinGRUCell", dict(bias_initializer="normal")),
    "min_lstm": ("MinLSTMCell", dict(activation="g", bias_initializer="normal")),  # the paper's positive g
}

#: kind -> the Keras weight shapes of its example cell with 4 units and 5 input features (DESIGN.md).
KERAS_WEIGHT_SHAPES = {
    "simple": [(5, 4), (4, 4), (4,)],
    "gru": [(5, 12), (4, 12), (2, 12)],
    "gru_reset_before": [(5, 12), (4, 12), (12,)],
    "lstm": [(5, 16), (4, 16), (16,)],
    "minimal": [(5, 4), (4, 4)],
    "min_gru": [(5, 8), (8,)],
    "min_lstm": [(5, 12), (12,)],
}


def _bias(config, weights):
    return weights[2] if config.get("use_bias", True) and len(weights) > 2 else None


#: class name -> step(config, weights) -> one-sample step function (x, states) -> (output, new_states).
REFERENCES = {
    "SimpleRNNCell": lambda config, w: lambda x, s: simple_rnn_step(x, s[0], w[0], w[1], _bias(config, w),
                                                                     config["activation"]),
    "GRUCell": lambda config, w: lambda x, s: gru_step(x, s[0], w[0], w[1], _bias(config, w), config["reset_after"],
                                                       config["activation"], config["recurrent_activation"]),
    "LSTMCell": lambda config, w: lambda x, s: lstm_step(x, s[0], s[1], w[0], w[1], _bias(config, w),
                                                         config["activation"], config["recurrent_activation"]),
    "MinimalRNNCell": lambda config, w: lambda x, s: simple_rnn_step(x, s[0], w[0], w[1], None, "linear"),
    "MinGRUCell": lambda config, w: lambda x, s: min_gru_step(x, s[0], w[0], w[1] if config["use_bias"] else None,
                                                              config["activation"]),
    "MinLSTMCell": lambda config, w: lambda x, s: min_lstm_step(x, s[0], w[0], w[1] if config["use_bias"] else None,
                                                                config["activation"]),
}


def run_sequence(step, x, states, mask=None, go_backwards=False, zero_output_for_mask=False):
    """Keras RNN semantics, one sample at a time.

    step(x_t, states) -> (output, new_states) for ONE sample (lists of floats).
    x: (B, T, F); states: list of (B, size) arrays; mask: (B, T) or None.
    Returns outputs (B, T, O) in processing order and final states (list of (B, size)).
    """
    B, T, _ = x.shape
    all_outputs, all_states = [], [[] for _ in states]
    for b in range(B):
        sample_states = [list(map(float, s[b])) for s in states]
        order = range(T - 1, -1, -1) if go_backwards else range(T)
        outputs, previous = [], None
        for t in order:
            output, new_states = step(x[b, t], sample_states)
            if previous is None:
                previous = [0.0] * len(output)
            if mask is not None and not mask[b, t]:
                output = [0.0] * len(output) if zero_output_for_mask else previous
                new_states = sample_states
            outputs.append(output)
            previous, sample_states = output, new_states
        all_outputs.append(outputs)
        for k, s in enumerate(sample_states):
            all_states[k].append(s)
    return np.array(all_outputs), [np.array(s) for s in all_states]


#: class name -> step(config, weights, m_x, m_h) -> one-sample step with that sample's dropout masks
#: m_x (F,) and m_h (U,) (either None), for the cells that take tf.keras 2's dropout.
DROPOUT_REFERENCES = {
    "SimpleRNNCell": lambda config, w, m_x, m_h: lambda x, s: simple_rnn_step(
        x, s[0], w[0], w[1], _bias(config, w), config["activation"], m_x, m_h),
    "GRUCell": lambda config, w, m_x, m_h: lambda x, s: gru_step(
        x, s[0], w[0], w[1], _bias(config, w), config["reset_after"], config["activation"],
        config["recurrent_activation"], m_x, m_h),
    "LSTMCell": lambda config, w, m_x, m_h: lambda x, s: lstm_step(
        x, s[0], s[1], w[0], w[1], _bias(config, w), config["activation"], config["recurrent_activation"], m_x, m_h),
}
