"""tf.keras 2's constraints and weight regularizers on fixed weights: tests/golden/constraints.json.

Run with the golden venv (see make_golden.py and ``make golden``):

    TF_CPP_MIN_LOG_LEVEL=2 tests/golden/.venv/bin/python tests/golden/make_constraints.py

tests/test_regularizers.py compares rnnlab.constraints and rnnlab.regularizers with it.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))

#: name -> (the constructor's arguments, as rnnlab and tf.keras 2 both take them)
CONSTRAINTS = {
    "MaxNorm": [{"max_value": 2.0}, {"max_value": 1.5, "axis": 1}],
    "NonNeg": [{}],
    "UnitNorm": [{}, {"axis": 1}],
    "MinMaxNorm": [{"min_value": 0.5, "max_value": 1.2, "rate": 0.7}, {"min_value": 0.5, "max_value": 1.2, "rate": 0.7, "axis": 1}],
}
REGULARIZERS = {"L1": [{"l1": 0.01}], "L2": [{"l2": 0.02}], "L1L2": [{"l1": 0.01, "l2": 0.02}]}


def main():
    keras.backend.set_floatx("float64")  # the regularizers' factors are floatx constants
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(5, 4)).astype("float64")
    cases = []
    for name, settings in CONSTRAINTS.items():
        for args in settings:
            constrained = getattr(keras.constraints, name)(**args)(tf.constant(kernel)).numpy()
            cases.append({"kind": "constraint", "name": name, "args": args, "result": constrained.tolist()})
    for name, settings in REGULARIZERS.items():
        for args in settings:
            weight = tf.Variable(kernel)
            with tf.GradientTape() as tape:
                penalty = getattr(keras.regularizers, name)(**args)(weight)
            cases.append({"kind": "regularizer", "name": name, "args": args, "penalty": float(penalty.numpy()),
                          "gradient": tape.gradient(penalty, weight).numpy().tolist()})
    with open(os.path.join(HERE, "constraints.json"), "w") as file:
        json.dump({"tensorflow": tf.__version__, "tf_keras": keras.__version__, "kernel": kernel.tolist(),
                   "cases": cases}, file, indent=1)


if __name__ == "__main__":
    main()
