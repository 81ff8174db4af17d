"""rl.load refuses every corrupt or foreign file with a clear ValueError, and never allocates what the file lacks.

The bad files are made by hand here (zipfile, np.lib.format, json); only ``rl.save``
of rnnlab is used, to make a valid file to corrupt.
"""

import io
import json
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import rnnlab as rl
from rnnlab.contract import deserialize

# -- making files by hand ----------------------------------------------------------


def npy(descr, shape, data=b"", fortran_order=False):
    """The bytes of a .npy file with this header, followed by ``data``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": fortran_order, "shape": shape})
    return buffer.getvalue() + data


def npy_array(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def npy_text(text):
    """A 0-d unicode .npy array, as np.savez stores the header string."""
    return npy(f"<U{len(text)}", (), text.encode("utf-32-le"))


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_rnnlab(path, header, weights, compression=zipfile.ZIP_STORED):
    """An rnnlab-like file: ``header`` (a dict, or raw JSON text) and weights (arrays, or raw .npy bytes)."""
    text = header if isinstance(header, str) else json.dumps(header)
    members = {"__header__.npy": npy_text(text)}
    for i, weight in enumerate(weights):
        members[f"weight_{i}.npy"] = weight if isinstance(weight, bytes) else npy_array(weight)
    return write_zip(path, members, compression)


def saved(obj, tmp_path, input_size=3):
    """Save a built ``obj`` with rl.save; return (path, header, weights), read back with numpy alone."""
    obj.ensure_built((None, 1, input_size))
    path = tmp_path / "valid.npz"
    rl.save(obj, path)
    with np.load(path, allow_pickle=False) as data:
        header = json.loads(str(data["__header__"]))
        weights = [data[f"weight_{i}"] for i in range(len(data.files) - 1)]
    return path, header, weights


@pytest.fixture
def lstm(tmp_path):
    """A valid file of an LSTMCell(2) on 3 inputs: 3 weights, 48 values."""
    return saved(rl.LSTMCell(2, seed=0), tmp_path)


@pytest.fixture
def model(tmp_path):
    """A valid file of a small Sequential model."""
    layers = [rl.RNN(rl.SimpleRNNCell(2, seed=0), backend="python"), rl.Dense(1, seed=1)]
    return saved(rl.Sequential(layers), tmp_path)


def with_config(header, object_spec=None, **entries):
    header = json.loads(json.dumps(header))  # a deep copy
    if object_spec is not None:
        header["object"] = object_spec
    header.update(entries)
    return header


def test_a_valid_file_made_by_hand_loads(lstm, tmp_path):
    """The hand-made files below differ from a valid one only where they say (a check on the helpers)."""
    _, header, weights = lstm
    loaded = rl.load(write_rnnlab(tmp_path / "by_hand.npz", header, weights))
    np.testing.assert_array_equal(loaded.get_weights()[1], weights[1])
    deflated = rl.load(write_rnnlab(tmp_path / "deflated.npz", header, weights, zipfile.ZIP_DEFLATED))
    np.testing.assert_array_equal(deflated.get_weights()[0], weights[0])
    fortran = [np.asfortranarray(w) for w in weights]
    np.testing.assert_array_equal(rl.load(write_rnnlab(tmp_path / "f.npz", header, fortran)).get_weights()[0],
                                  weights[0])


# -- not an rnnlab file at all -------------------------------------------------------


def test_empty_file(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="not an rnnlab file: it is not a readable zip archive"):
        rl.load(tmp_path / "empty.npz")


def test_plain_npy_file(tmp_path):
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match="not an rnnlab file: it is not a readable zip archive"):
        rl.load(tmp_path / "plain.npy")


def test_random_bytes(tmp_path):
    (tmp_path / "noise.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not an rnnlab file"):
        rl.load(tmp_path / "noise.npz")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file(lstm, tmp_path, keep):
    path, _, _ = lstm
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="not an rnnlab file"):
        rl.load(tmp_path / "cut.npz")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ValueError, match="not an rnnlab file: it is not a readable zip archive.*No such file"):
        rl.load(tmp_path / "nothing_here.npz")
    with pytest.raises(ValueError, match="not an rnnlab file: it is not a readable zip archive.*directory"):
        rl.load(tmp_path)


@pytest.mark.parametrize("members, fragment", [
    ({"weight_0.npy": b""}, "no __header__.npy member"),
    ({"__header__.npy": b"", "evil.py": b""}, "unexpected member 'evil.py'"),
    ({"__header__.npy": b"", "weight_1.npy": b""}, "unexpected member 'weight_1.npy'"),  # no weight_0
    ({"__header__.npy": b"", "weight_00.npy": b""}, "unexpected member 'weight_00.npy'"),
])
def test_unexpected_members(tmp_path, members, fragment):
    with pytest.raises(ValueError, match=fragment):
        rl.load(write_zip(tmp_path / "m.npz", members))


def test_bzip2_member_is_refused(lstm, tmp_path):
    _, header, weights = lstm
    path = write_rnnlab(tmp_path / "bz.npz", header, weights, zipfile.ZIP_BZIP2)
    with pytest.raises(ValueError, match="compression method 12; expected stored or deflated"):
        rl.load(path)


class Boom:
    """Unpickling this records that code from the file ran."""

    ran = []

    def __reduce__(self):
        return (Boom.ran.append, ("code from the file ran",))


@pytest.mark.parametrize("member", ["__header__", "weight_0"])
def test_pickled_object_members_never_run(lstm, tmp_path, member):
    _, header, weights = lstm
    evil = npy_array(np.array([Boom()], dtype=object), allow_pickle=True)
    if member == "__header__":
        path = write_zip(tmp_path / "p.npz", {"__header__.npy": evil, **{f"weight_{i}.npy": npy_array(w)
                                                                        for i, w in enumerate(weights)}})
    else:
        path = write_rnnlab(tmp_path / "p.npz", header, [evil, *weights[1:]])
    with pytest.raises(ValueError, match="holds an array of dtype object"):
        rl.load(path)
    assert Boom.ran == []


def test_integer_weights_are_refused(lstm, tmp_path):
    _, header, weights = lstm
    path = write_rnnlab(tmp_path / "int.npz", header, [weights[0].astype(np.int32), *weights[1:]])
    with pytest.raises(ValueError, match="'weight_0.npy' holds an array of dtype int32.*expected a float32 or float64"):
        rl.load(path)


@pytest.mark.parametrize("member, fragment", [
    (b"not a npy file at all", "'weight_0.npy' is not a .npy array"),
    (npy("<f4", (10,), bytes(8)), r"declares shape \(10,\) of float32 \(40 bytes\), but holds 8 bytes"),
    (npy("<f4", (1,), bytes(8)), r"declares shape \(1,\) of float32 \(4 bytes\), but holds 8 bytes"),
    (npy("<f4", (-3,), bytes(8)), "negative shape"),
])
def test_damaged_weight_members(lstm, tmp_path, member, fragment):
    _, header, weights = lstm
    with pytest.raises(ValueError, match=fragment):
        rl.load(write_rnnlab(tmp_path / "d.npz", header, [member, *weights[1:]]))


def test_bad_crc_is_refused(lstm, tmp_path):
    path, _, weights = lstm
    data = bytearray(path.read_bytes())
    at = data.find(npy_array(weights[2]))  # the bias: flip one of its data bytes
    data[at + 130] ^= 0xFF
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="'weight_2.npy' is damaged.*CRC"):
        rl.load(tmp_path / "crc.npz")


# -- foreign headers -----------------------------------------------------------------


@pytest.mark.parametrize("header, fragment", [
    ('{"format": "rnnlab", "version": ', "its header is not valid JSON"),
    ("[1, 2, 3]", "header is not a dict with a 'format': 'rnnlab' entry"),
    ('{"format": "keras", "version": 1}', "header is not a dict with a 'format': 'rnnlab' entry"),
    ('{"format": "rnnlab", "version": 99}', "file version 99; this rnnlab reads version 1"),
    ('{"format": "rnnlab", "version": true}', "file version True"),
    ("[" * 100_000, "its header is not valid JSON"),  # deeper than Python can parse
])
def test_foreign_headers(lstm, tmp_path, header, fragment):
    _, _, weights = lstm
    with pytest.raises(ValueError, match=fragment):
        rl.load(write_rnnlab(tmp_path / "h.npz", header, weights))


def test_header_that_is_not_a_string(lstm, tmp_path):
    _, _, weights = lstm
    path = write_zip(tmp_path / "h.npz", {"__header__.npy": npy_array(np.zeros(3)),
                                          **{f"weight_{i}.npy": npy_array(w) for i, w in enumerate(weights)}})
    with pytest.raises(ValueError, match="expected a JSON string"):
        rl.load(path)


def test_header_too_big(lstm, tmp_path):
    _, header, weights = lstm
    padded = json.dumps(header) + " " * rl.io.MAX_HEADER_BYTES  # valid JSON, but too long
    with pytest.raises(ValueError, match=f"more than the {rl.io.MAX_HEADER_BYTES} allowed"):
        rl.load(write_rnnlab(tmp_path / "big.npz", padded, weights))


@pytest.mark.parametrize("key", ["object", "input_size"])
def test_header_missing_an_entry(lstm, tmp_path, key):
    _, header, weights = lstm
    del header[key]
    with pytest.raises(ValueError, match=f"its header has no '{key}' entry"):
        rl.load(write_rnnlab(tmp_path / "h.npz", header, weights))


@pytest.mark.parametrize("input_size", ["three", None, -5, 0, True, 3.0, [3]])
def test_input_size_must_be_a_positive_int(lstm, tmp_path, input_size):
    _, header, weights = lstm
    with pytest.raises(ValueError, match="input_size must be a positive int, got"):
        rl.load(write_rnnlab(tmp_path / "h.npz", with_config(header, input_size=input_size), weights))


# -- configs that cannot be rebuilt --------------------------------------------------


def cell_spec(**config):
    return {"class_name": "SimpleRNNCell", "config": {"units": 2, **config}}


def rnn_spec(**config):
    return {"class_name": "RNN", "config": {"cell": cell_spec(), **config}}


@pytest.mark.parametrize("spec, fragment", [
    ({"class_name": "RNN", "config": {}}, "cannot rebuild RNN from its config: it has no key 'cell'"),
    ({"class_name": "Bidirectional", "config": {"layer": rnn_spec(), "backward_layer": rnn_spec()}},
     "cannot rebuild Bidirectional from its config: it has no key 'merge_mode'"),
    ({"class_name": "Bidirectional", "config": {"merge_mode": "sum"}},
     "cannot rebuild Bidirectional from its config: it has no key 'layer'"),
    ({"class_name": "StackedRNNCells", "config": {"name": "s"}},
     "cannot rebuild StackedRNNCells from its config: it has no key 'cells'"),
    ({"class_name": "Sequential", "config": {"loss": "mse"}},
     "cannot rebuild Sequential from its config: it has no key 'layers'"),
    ({"class_name": "Sequential", "config": {"layers": [rnn_spec(), {"class_name": "Dense", "config": {"units": 1}}]}},
     "cannot rebuild Sequential from its config: it has no key 'optimizer'"),
    ({"class_name": "SimpleRNNCell", "config": {}}, "cannot rebuild SimpleRNNCell from its config: .*'units'"),
    (cell_spec(bogus=1), "cannot rebuild SimpleRNNCell from its config: .*unexpected keyword argument 'bogus'"),
    ({"class_name": "RNN", "config": [1, 2]}, "the config of RNN must be a dict, got a list"),
    ({"class_name": "Bidirectional", "config": {"layer": [], "backward_layer": [], "merge_mode": "sum"}},
     "cannot rebuild Bidirectional from its config: list indices"),
    ({"class_name": "StackedRNNCells", "config": {"cells": 5}}, "cannot rebuild StackedRNNCells from its config"),
    ([1, 2], "expected a {'class_name': str, 'config': dict} dict, got a list"),
    ({"class_name": ["RNN"], "config": {}}, "expected a {'class_name': str, 'config': dict} dict"),
])
def test_bad_configs_name_the_class(spec, fragment):
    with pytest.raises(ValueError, match=fragment):
        deserialize(spec)


def test_nested_errors_are_not_wrapped_twice():
    broken_cell = {"class_name": "LSTMCell", "config": {"units": 2, "bogus": 1}}
    spec = {"class_name": "Sequential", "config": {
        "layers": [{"class_name": "RNN", "config": {"cell": broken_cell}}, {"class_name": "Dense", "config": {}}],
        "optimizer": "adam"}}
    with pytest.raises(ValueError) as caught:
        deserialize(spec)
    message = str(caught.value)
    assert message.startswith("cannot rebuild LSTMCell from its config") and message.count("cannot rebuild") == 1


@pytest.mark.parametrize("spec, fragment", [
    ({"class_name": "RNN", "config": {}}, "cannot rebuild RNN from its config: it has no key 'cell'"),
    ({"class_name": "RNN", "config": "cell"}, "the config of RNN must be a dict, got a str"),
])
def test_bad_configs_through_load(lstm, tmp_path, spec, fragment):
    _, header, weights = lstm
    path = write_rnnlab(tmp_path / "c.npz", with_config(header, spec), weights)
    with pytest.raises(ValueError, match=fragment):
        rl.load(path)


# -- weights that do not match the config ----------------------------------------------


def test_too_few_weights(lstm, tmp_path):
    _, header, weights = lstm
    with pytest.raises(ValueError, match="refusing to allocate"):
        rl.load(write_rnnlab(tmp_path / "w.npz", header, weights[:2]))


def test_too_many_weights(lstm, tmp_path):
    _, header, weights = lstm
    with pytest.raises(ValueError, match="weights do not match its config: .*expects 3 weight arrays"):
        rl.load(write_rnnlab(tmp_path / "w.npz", header, [*weights, np.zeros(4, np.float32)]))


def test_weight_of_the_wrong_shape(lstm, tmp_path):
    _, header, weights = lstm
    with pytest.raises(ValueError, match="weights do not match its config: .*shape"):
        rl.load(write_rnnlab(tmp_path / "w.npz", header, [weights[0].T, *weights[1:]]))


def test_add_weight_has_no_budget_outside_load():
    cell = rl.LSTMCell(300, seed=0)  # far more weight values than any file above holds
    cell.build((None, 1))
    assert cell.count_params() > 10**5


# -- huge declared sizes: refused before anything is allocated ------------------------


def huge_member(header, weights):
    return header, [npy("<f4", (2**50,), bytes(8)), *weights[1:]]


def huge_input_size(header, weights):
    return with_config(header, input_size=10**15), weights


def huge_units(header, weights):
    header = with_config(header)
    header["object"]["config"]["units"] = 10**15
    return header, weights


def units_just_allowed(header, weights):
    """units=1000 passes the size check (<= ALWAYS_ALLOWED_SIZE), so the weight budget must refuse it."""
    header = with_config(header)
    header["object"]["config"]["units"] = 1000
    return header, weights


def model_dense_units_just_allowed(header, weights):
    header = with_config(header)
    header["object"]["config"]["layers"][1]["config"]["units"] = 1000
    return header, weights


def model_huge_units(header, weights):
    header = with_config(header)
    header["object"]["config"]["layers"][0]["config"]["cell"]["config"]["units"] = 10**15
    return header, weights


HUGE = [
    ("lstm", huge_member, r"declares shape \(1125899906842624,\)"),
    ("lstm", huge_input_size, "asks for input_size=1000000000000000, but the file holds only 48 weight values"),
    ("lstm", huge_units, "asks for units=1000000000000000, but the file holds only 48 weight values"),
    ("lstm", units_just_allowed, r"holds 48 weight values, but the config asks for a weight 'kernel' of shape "
                                 r"\(3, 4000\).*refusing to allocate"),
    ("model", huge_input_size, "asks for input_size=1000000000000000, but the file holds only 15 weight values"),
    ("model", model_huge_units, "asks for units=1000000000000000"),
    ("model", model_dense_units_just_allowed, r"holds 15 weight values, but the config asks for a weight 'kernel' "
                                              r"of shape \(2, 1000\) \(2000 values, 3 left\); refusing to allocate"),
]


@pytest.mark.parametrize("fixture, corrupt, fragment", HUGE, ids=[f"{case[0]}-{case[1].__name__}" for case in HUGE])
def test_huge_declared_sizes_are_refused_without_allocating(request, tmp_path, fixture, corrupt, fragment):
    _, header, weights = request.getfixturevalue(fixture)
    header, weights = corrupt(header, weights)
    path = write_rnnlab(tmp_path / "huge.npz", header, weights)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=fragment):
            rl.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"load allocated {peak / 2**20:.1f} MiB for a file of {path.stat().st_size} bytes"


def test_huge_header_string_is_refused(lstm, tmp_path):
    _, _, weights = lstm
    path = write_zip(tmp_path / "h.npz", {"__header__.npy": npy("<U100000000", (), b"{}"),
                                          **{f"weight_{i}.npy": npy_array(w) for i, w in enumerate(weights)}})
    with pytest.raises(ValueError, match=r"declares shape \(\) of <U100000000 \(400000000 bytes\), but holds 2 bytes"):
        rl.load(path)


def claim_size(data, member, size):
    """``data`` (a zip archive) with ``member``'s sizes in the central directory changed to ``size``."""
    data = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == member.encode():
            struct.pack_into("<II", data, at + 20, size, size)  # compressed and uncompressed size
        at = data.find(b"PK\x01\x02", at + 1)
    return bytes(data)


def test_stored_member_claiming_more_than_the_file(lstm, tmp_path):
    path, _, _ = lstm
    (tmp_path / "claim.npz").write_bytes(claim_size(path.read_bytes(), "weight_0.npy", 2**31))
    with pytest.raises(ValueError, match="stored members claim .* bytes, but the file has only"):
        rl.load(tmp_path / "claim.npz")


def test_deflated_members_are_capped(lstm, tmp_path, monkeypatch):
    _, header, weights = lstm
    big = [np.zeros((3, 4000), np.float32), *weights[1:]]  # 48 KB of zeros, deflated to a few hundred bytes
    path = write_rnnlab(tmp_path / "bomb.npz", header, big, zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(rl.io, "MAX_INFLATED_BYTES", 10_000)
    with pytest.raises(ValueError, match="compressed members claim to inflate to .* more than the 10000 allowed"):
        rl.load(path)
