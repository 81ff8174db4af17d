"""save/load round-trips every object, reads no pickles, and refuses foreign files clearly."""

import json

import numpy as np
import pytest

import rnnlab as rl

X = np.random.default_rng(0).normal(size=(2, 4, 3))


@pytest.mark.parametrize("make", [
    lambda: rl.LSTMCell(3, seed=0, activation="relu"),
    lambda: rl.GRUCell(3, reset_after=False, seed=1, kernel_initializer=rl.initializers.Uniform(-1, 1)),
    lambda: rl.RNN(rl.SimpleRNNCell(2, seed=2), return_sequences=True, go_backwards=True),
    lambda: rl.RNN([rl.LSTMCell(2, seed=3), rl.MinimalRNNCell(3, seed=4)], return_state=True),
    lambda: rl.Bidirectional(rl.RNN(rl.GRUCell(2, seed=5), return_sequences=True), merge_mode="ave"),
    lambda: rl.Dense(4, activation="sigmoid", seed=6),
])
def test_round_trip_gives_the_same_outputs(make, tmp_path):
    obj = make()
    run = (lambda o: o(X[:, 0])) if isinstance(obj, (rl.AbstractRNNCell, rl.Dense)) else (lambda o: o(X))
    before = run(obj)
    rl.save(obj, tmp_path / "model.npz")
    loaded = rl.load(tmp_path / "model.npz")
    assert type(loaded) is type(obj)
    for a, b in zip(rl.nest.flatten(before), rl.nest.flatten(run(loaded))):
        np.testing.assert_array_equal(a, b)


def test_file_is_plain_npz_with_json_header(tmp_path):
    rl.save(_built_lstm(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        header = json.loads(str(data["__header__"]))
        assert header["format"] == "rnnlab" and header["object"]["class_name"] == "LSTMCell"
        assert data["weight_0"].shape == (3, 8)


def _built_lstm():
    cell = rl.LSTMCell(2, seed=0)
    cell.build((None, 3))
    return cell


def test_foreign_and_corrupt_files_get_a_clear_error(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    np.save(tmp_path / "pickled.npy", np.array([{"evil": 1}], dtype=object))
    for name in ("text.npz", "other.npz", "pickled.npy"):
        with pytest.raises(ValueError, match="not an rnnlab file"):
            rl.load(tmp_path / name)


def test_unknown_class_and_unbuilt_and_unserializable_objects(tmp_path):
    rl.save(_built_lstm(), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        header = json.loads(str(data["__header__"]))
        weights = {k: data[k] for k in data.files if k != "__header__"}
    header["object"]["class_name"] = "NoSuchCell"
    np.savez(tmp_path / "renamed.npz", __header__=np.array(json.dumps(header)), **weights)
    with pytest.raises(ValueError, match="unknown class 'NoSuchCell'.*custom_objects"):
        rl.load(tmp_path / "renamed.npz")
    with pytest.raises(ValueError, match="not built yet"):
        rl.save(rl.GRUCell(2), tmp_path / "unbuilt.npz")
    custom = rl.SimpleRNNCell(2, activation=np.sin)
    custom.build((None, 1))
    with pytest.raises(ValueError, match="given by name"):
        rl.save(custom, tmp_path / "custom.npz")


def test_custom_cell_loads_through_custom_objects(tmp_path):
    class Doubler(rl.MinimalRNNCell):
        pass

    cell = Doubler(2, seed=0)
    cell.build((None, 1))
    rl.save(cell, tmp_path / "d.npz")
    loaded = rl.load(tmp_path / "d.npz", custom_objects={"Doubler": Doubler})
    np.testing.assert_array_equal(loaded.get_weights()[1], cell.get_weights()[1])
