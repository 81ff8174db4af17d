"""rl.sweep on a real Dask distributed LocalCluster: results, the store, real faults, bad input.

The reference is a plain serial loop over the grid in this process.  Faults
are real: a worker process killed by its pid, a client process killed with
SIGKILL, store files damaged on disk.  The task functions live in
tests/sweep_tasks.py, which the workers import (they inherit this process's sys.path).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
from distributed import Client, LocalCluster

import rnnlab as rl
import sweep_tasks as tasks
from rnnlab.sweep import Store

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, shared by the tests of this module."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        yield client


def product(grid):
    """The points of a dict-of-lists grid, written out by hand: the last name varies fastest."""
    points = [{}]
    for name, values in grid.items():
        points = [{**point, name: value} for point in points for value in values]
    return points


def calls(log):
    """How many times ``tasks.logged`` started, per x."""
    return Counter(int(path.name.split("-")[1]) for path in Path(log).glob("start-*"))


def stored_entries(store):
    """{x: entry file} of the finished tasks in a store of ``tasks.logged`` (temporary files left out)."""
    entries = {}
    for path in Path(store).iterdir():
        if not path.name.startswith("."):
            with zipfile.ZipFile(path) as archive:
                entries[json.loads(archive.read("entry.json"))["params"]["x"]] = path
    return entries


def logged_grid(log, n, seconds=0.0):
    return {"x": list(range(n)), "log": [str(log)], "seconds": [seconds]}


def logged_table(log, n, seconds=0.0):
    """What ``rl.sweep(tasks.logged, logged_grid(log, n, seconds))`` must return as its table."""
    return pd.DataFrame([{"x": x, "log": str(log), "seconds": seconds, "square": x * x} for x in range(n)])


CLIENT_SCRIPT = """
import sys
from distributed import Client
import rnnlab as rl
import sweep_tasks
address, store, log, n, seconds = sys.argv[1:]
grid = {"x": list(range(int(n))), "log": [log], "seconds": [float(seconds)]}
with Client(address) as client:
    rl.sweep(sweep_tasks.logged, grid, client=client, store=store, progress=False)
"""


def start_client_process(client, store, log, n, seconds):
    """Another process that sweeps ``tasks.logged`` on the same cluster, into ``store``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    arguments = [client.scheduler.address, str(store), str(log), str(n), str(seconds)]
    return subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, *arguments], env=env)


def wait_for(condition, what, timeout=60):
    """Poll condition() every 10 ms until it is true; fail after timeout seconds."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def log(tmp_path):
    (tmp_path / "log").mkdir()
    return tmp_path / "log"


# -- results ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stored", [False, True], ids=["in memory", "stored"])
def test_results_equal_a_plain_serial_loop(client, tmp_path, stored):
    grid = {"gain": [0.5, 1.5], "seed": [0, 1, 2]}
    points = product(grid)
    expected = [tasks.trajectory(**point) for point in points]
    scalars = ["mean", "final_norm", "steps", "saturated", "label", "nothing"]
    table = pd.DataFrame([{**point, **{name: e[name] for name in scalars}} for point, e in zip(points, expected)])

    for _ in range(2 if stored else 1):  # with a store, the second sweep reads every result back from it
        res = rl.sweep(tasks.trajectory, grid, client=client, store=tmp_path / "store" if stored else None)
        pd.testing.assert_frame_equal(res.table, table, check_exact=True)
        for row, e in enumerate(expected):
            for name in ["states", "signs", "eigenvalues"]:
                got, want = res.array(row, name), np.asarray(e[name])
                assert got.dtype == want.dtype and got.shape == want.shape
                np.testing.assert_array_equal(got, want)
        assert res.errors == []


def test_a_store_holds_json_and_npz_only(client, tmp_path):
    store = tmp_path / "store"
    res = rl.sweep(tasks.trajectory, {"gain": [0.5], "seed": [0, 1]}, client=client, store=store)
    entries = sorted(store.iterdir())
    assert len(entries) == 2 and all(e.suffix == ".npz" and not e.name.startswith(".") for e in entries)
    for entry in entries:
        with np.load(entry, allow_pickle=False) as data:  # an .npz, readable without pickle
            assert sorted(data.files) == ["eigenvalues", "entry.json", "signs", "states"]
            body = json.loads(data["entry.json"])  # a member that is not an array comes back as bytes
            assert data["states"].shape == (20, 5)
        assert body["key"] == entry.stem and body["fn"] == "sweep_tasks.trajectory"
        row = res.table.index[res.table.seed == body["params"]["seed"]][0]
        assert body["scalars"]["mean"] == res.table.loc[row, "mean"]


def test_asking_for_a_missing_row_or_array_names_what_there_is(client):
    res = rl.sweep(tasks.trajectory, [{"gain": 0.5, "seed": 0}], client=client)
    with pytest.raises(ValueError, match="row 5"):
        res.array(5, "states")
    with pytest.raises(ValueError, match=r"'eigenvalues', 'signs', 'states'"):
        res.array(0, "mean")


def test_a_list_of_dicts_is_the_grid_in_its_own_order(client):
    points = [{"gain": 1.5, "seed": 2}, {"gain": 0.5, "seed": 7}, {"gain": 1.0, "seed": 0}]
    res = rl.sweep(tasks.trajectory, points, client=client)
    assert res.table[["gain", "seed"]].to_dict("records") == points
    assert list(res.table["mean"]) == [tasks.trajectory(**p)["mean"] for p in points]


def test_a_task_that_raises_is_reported_with_its_parameters_and_the_sweep_goes_on(client, tmp_path, capsys):
    store = tmp_path / "store"
    res = rl.sweep(tasks.fails_at, {"x": [0, 1, 2, 3], "bad": [2]}, client=client, store=store, progress=True)
    assert list(res.table["x"]) == [0, 1, 3] and list(res.table["double"]) == [0, 2, 6]
    (error,) = res.errors
    assert error.params == {"x": 2, "bad": 2}
    assert error.message == "ValueError: x=2 is bad"
    assert "in fails_at" in error.traceback and 'raise ValueError(f"x={x} is bad")' in error.traceback
    assert "4/4" in capsys.readouterr().out.splitlines()[-1]  # the progress bar counted every task
    assert len(list(store.iterdir())) == 3  # errors are not stored: a rerun tries the point again
    rl.sweep(tasks.fails_at, {"x": [0, 1, 2, 3], "bad": [2]}, client=client, store=store, progress=True)
    bar = capsys.readouterr().out.splitlines()[-1]
    assert "4/4" in bar and "errors=1" in bar  # 3 from the store, 1 run again (and failed again)


# -- the store: resume, corruption, two writers -----------------------------------------------------------------------

def test_a_rerun_with_the_same_store_computes_only_what_is_missing(client, tmp_path, log):
    store = tmp_path / "store"
    rl.sweep(tasks.logged, logged_grid(log, 3), client=client, store=store)
    res = rl.sweep(tasks.logged, logged_grid(log, 5), client=client, store=store)
    assert calls(log) == {x: 1 for x in range(5)}
    pd.testing.assert_frame_equal(res.table, logged_table(log, 5))
    np.testing.assert_array_equal(res.array(4, "powers"), [1, 4, 16])


@pytest.mark.parametrize("damage", ["scalar changed", "array byte flipped", "cut short", "emptied"])
def test_a_corrupt_store_entry_is_recomputed(client, tmp_path, log, damage):
    store = tmp_path / "store"
    rl.sweep(tasks.logged, logged_grid(log, 3), client=client, store=store)
    entry = stored_entries(store)[1]
    data = entry.read_bytes()
    if damage == "scalar changed":  # one digit of the JSON inside the archive, as bit rot would change it
        data = data.replace(b'"square": 1', b'"square": 7')
    elif damage == "array byte flipped":
        at = data.index(np.array([1, 1, 1]).tobytes()) + 8  # the middle element of "powers"
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    elif damage == "cut short":
        data = data[: len(data) // 2]
    else:
        data = b""
    assert data != entry.read_bytes()
    entry.write_bytes(data)

    with pytest.warns(UserWarning, match="corrupt"):
        res = rl.sweep(tasks.logged, logged_grid(log, 3), client=client, store=store)
    assert calls(log) == {0: 1, 1: 2, 2: 1}
    pd.testing.assert_frame_equal(res.table, logged_table(log, 3))
    np.testing.assert_array_equal(res.array(1, "powers"), [1, 1, 1])
    rl.sweep(tasks.logged, logged_grid(log, 3), client=client, store=store)
    assert calls(log) == {0: 1, 1: 2, 2: 1}  # the recomputed entry is good again


def test_two_writers_of_one_entry_leave_one_whole_entry(tmp_path):
    store, key = Store(tmp_path / "store"), "ab" * 32
    store.save(key, {"scalars": {"a": 1}, "arrays": ["v"]}, {"v": np.arange(3)})
    store.save(key, {"scalars": {"a": 2}, "arrays": ["v"]}, {"v": np.arange(4)})
    assert [path.name for path in store.path.iterdir()] == [f"{key}.npz"]  # no temporary file left
    assert store.load(key)["scalars"] == {"a": 2}
    np.testing.assert_array_equal(store.array(key, "v"), np.arange(4))


def test_two_sweeps_writing_one_store_at_once_do_not_corrupt_it(client, tmp_path, log):
    store, n = tmp_path / "store", 24
    other = start_client_process(client, store, log, n, seconds=0.1)
    try:
        wait_for(lambda: store.exists() and len(stored_entries(store)) >= 1, "the other sweep's first entry")
        assert other.poll() is None, "the other sweep finished before this one started"
        res = rl.sweep(tasks.logged, logged_grid(log, n, 0.1), client=client, store=store)
        assert other.wait(timeout=60) == 0
    finally:
        other.kill()
    pd.testing.assert_frame_equal(res.table, logged_table(log, n, 0.1))
    assert max(calls(log).values()) == 2  # both sweeps ran some points: their writes met
    assert sorted(stored_entries(store)) == list(range(n))
    assert not [path for path in store.iterdir() if path.name.startswith(".")]  # no temporary folder left
    checked = Store(store)
    for x, entry in stored_entries(store).items():
        assert checked.load(entry.stem)["scalars"]["square"] == x * x  # every entry passes its checksums


# -- real faults ------------------------------------------------------------------------------------------------------

def test_an_interrupted_sweep_resumes_without_recomputing_what_it_stored(client, tmp_path, log):
    store, n = tmp_path / "store", 30
    other = start_client_process(client, store, log, n, seconds=0.1)
    try:
        wait_for(lambda: store.exists() and len(stored_entries(store)) >= 5, "five stored entries")
        assert other.poll() is None, "the sweep finished before it could be killed"
        os.kill(other.pid, signal.SIGKILL)
        assert other.wait(timeout=30) == -signal.SIGKILL
    finally:
        other.kill()
    stored = set(stored_entries(store))
    before = calls(log)
    assert 5 <= len(stored) < n

    res = rl.sweep(tasks.logged, logged_grid(log, n, 0.1), client=client, store=store)
    after = calls(log)
    assert {x: after[x] for x in stored} == {x: before[x] for x in stored} == {x: 1 for x in stored}
    assert all(after[x] >= 1 for x in range(n))
    pd.testing.assert_frame_equal(res.table, logged_table(log, n, 0.1))


def test_a_worker_killed_mid_sweep_loses_no_task_and_lists_none_twice(client, tmp_path, log):
    killed = []  # the tag of the task that was running in the killed worker
    stop = threading.Event()

    def kill_a_busy_worker():
        """Once a task has finished, SIGKILL a worker process while it runs a task."""
        while not killed and not stop.is_set():
            started = {path.name[len("start-"):] for path in log.glob("start-*")}
            done = {path.name[len("done-"):] for path in log.glob("done-*")}
            if done and started - done:
                tag = sorted(started - done)[0]  # "<x>-<pid>-<id>"
                os.kill(int(tag.split("-")[1]), signal.SIGKILL)
                killed.append(tag)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        res = rl.sweep(tasks.logged, logged_grid(log, 16, 0.25), client=client, store=tmp_path / "store")
    finally:
        stop.set()
        killer.join(timeout=5)
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker, for the next tests
    (tag,) = killed
    assert not (log / f"done-{tag}").exists()  # it really died in the middle of a task
    assert calls(log)[int(tag.split("-")[0])] >= 2  # and that task ran again on another worker
    pd.testing.assert_frame_equal(res.table, logged_table(log, 16, 0.25))  # every point once, in order
    assert res.errors == []
    assert sorted(stored_entries(tmp_path / "store")) == list(range(16))


# -- the embedded default and the optional extra ----------------------------------------------------------------------

def test_the_embedded_default_needs_no_arguments_and_shuts_down():
    res = rl.sweep(tasks.worker_env, {"i": [0, 1, 2, 3]})
    assert list(res.table["i"]) == [0, 1, 2, 3]
    for name in ["NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
        assert set(res.table[name]) == {"1"}, name
    pids = set(res.table["pid"])
    assert os.getpid() not in pids  # worker processes, not threads of this one
    wait_for(lambda: not any(psutil.pid_exists(pid) for pid in pids), "the embedded workers to exit", timeout=30)


def test_import_rnnlab_does_not_import_dask():
    code = ("import sys, rnnlab\n"
            "assert not {'dask', 'distributed', 'pandas'} & set(sys.modules), 'imported too early'\n"
            "assert callable(rnnlab.sweep) and rnnlab.sweep.Store\n"
            "assert 'distributed' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("missing", ["dask", "distributed", "pandas"])
def test_without_the_extra_rl_sweep_raises_an_import_error_naming_it(missing):
    code = (f"import sys; sys.modules[{missing!r}] = None  # as if it were not installed\n"
            "import rnnlab as rl\n"
            "try:\n    rl.sweep\nexcept ImportError as error:\n    print(error)\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "pip install 'rnnlab[sweep]'" in out and f"import of {missing} halted" in out


# -- bad input --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("grid", [{}, [], {"x": []}, {"x": [1], "y": []}], ids=repr)
def test_an_empty_grid_is_refused(grid):
    with pytest.raises(ValueError, match="empty"):
        rl.sweep(tasks.fails_at, grid)


@pytest.mark.parametrize("grid, message", [
    ({"x": 3}, r"grid\['x'\] must be a list"),
    ({"x": "abc"}, r"grid\['x'\] must be a list"),
    ({"x": np.zeros((2, 2))}, r"grid\['x'\] must be a list"),
    ("x", "grid must be a dict or a list"),
    ([{"x": 1}, 2], r"grid\[1\] must be a dict"),
    ([{1: 1}], "parameter names must be strings"),
], ids=["scalar", "string", "2-D array", "string grid", "list of non-dicts", "non-string name"])
def test_a_grid_of_the_wrong_shape_is_refused(grid, message):
    with pytest.raises(TypeError, match=message):
        rl.sweep(tasks.fails_at, grid)


@pytest.mark.parametrize("value", [object(), np.zeros(3), {"a": 1}, 1 + 2j, [1, {2}]],
                         ids=["object", "array", "dict", "complex", "list holding a set"])
def test_a_grid_value_that_cannot_be_hashed_into_a_key_is_refused(value):
    with pytest.raises(TypeError, match="cannot be hashed into a task key"):
        rl.sweep(tasks.fails_at, {"x": [1, value], "bad": [0]})


def test_a_point_given_twice_is_refused():
    with pytest.raises(ValueError, match="appears twice"):
        rl.sweep(tasks.fails_at, {"x": [1, 2, 1], "bad": [0]})
    with pytest.raises(ValueError, match="appears twice"):  # numpy and Python numbers make the same key
        rl.sweep(tasks.fails_at, [{"x": 1}, {"x": np.int64(1)}])


def test_a_store_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        rl.sweep(tasks.fails_at, {"x": [1], "bad": [0]}, store=tmp_path / "file")
    with pytest.raises(TypeError, match="store must be a folder path"):
        rl.sweep(tasks.fails_at, {"x": [1], "bad": [0]}, store=3)


def test_a_function_the_key_cannot_name_and_a_wrong_client_are_refused():
    with pytest.raises(TypeError, match="fn must be a function"):
        rl.sweep("fails_at", {"x": [1]})
    with pytest.raises(TypeError, match="wrap it in a def"):
        rl.sweep(functools.partial(tasks.fails_at, bad=0), {"x": [1]})
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        rl.sweep(tasks.fails_at, {"x": [1], "bad": [0]}, client="tcp://127.0.0.1:8786")


@pytest.mark.parametrize("kind, error, message", [
    ("list", TypeError, "fn must return a dict of scalars and arrays"),
    ("object", TypeError, "'value' = object, which cannot be stored"),
    ("dict", TypeError, "'value' = dict, which cannot be stored"),
    ("ragged", TypeError, "'value' = list, which cannot be stored"),
    ("strings", TypeError, "'value' = ndarray, which cannot be stored"),
    ("parameter name", ValueError, "'x', which is also a parameter name"),
])
def test_a_result_that_cannot_be_stored_stops_the_sweep_with_a_clear_error(client, tmp_path, kind, error, message):
    with pytest.raises(error, match=message):
        rl.sweep(tasks.bad_result, {"x": [1, 2], "kind": [kind]}, client=client, store=tmp_path / "store")
    assert list((tmp_path / "store").iterdir()) == []
