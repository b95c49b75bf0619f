"""Dataset generation (sharded, parallel, resumable), the HDF5 schema, reading and normalisers."""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import sciml
from sciml.data import (
    GridDataset,
    IdentityNormalizer,
    MinMaxNormalizer,
    UnitGaussianNormalizer,
    generate,
    load_arrays,
    make_normalizer,
    normalizer_from_state,
    open_dataset_file,
    read_attrs,
    split_indices,
    write_attrs,
)
from sciml.data.shards import shard_rng
from sciml.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    NonFiniteError,
    ProblemError,
    ShapeError,
    UnknownNameError,
)
from sciml.fields import Grid
from sciml.problem import Input, Problem, load_problem

TOY = Path(__file__).with_name("_data_toy.py")
N, SHARD, SEED = 22, 4, 7  # 6 shards, the last one short
TIME_ATTRS = {"created", "finished"}


# -- helpers ---------------------------------------------------------------------------------------
class _Walk:
    """Random walks in 1-D: a tiny space for inline problems."""

    def sample(self, n, grid, rng):
        return np.cumsum(rng.normal(size=(n, *grid.shape)), axis=-1) / np.sqrt(grid.shape[-1])

    def to_dict(self):
        return {"kind": "walk"}


def _cumsum_reference(inputs, grid, params):
    return {"u": np.cumsum(inputs["a"], axis=-1) * grid.spacing[0] * params["scale"]}


def _line(**kw) -> Problem:
    base = dict(
        name="line",
        inputs=[Input("a", _Walk())],
        outputs=["u"],
        grid=Grid(33),
        reference=_cumsum_reference,
        params={"scale": 2.0},
    )
    base.update(kw)
    return Problem(**base)


def _contents(path: Path) -> tuple[dict, dict]:
    """Every dataset (as arrays) and every attribute of a file."""
    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
        )
        attrs = read_attrs(f)
    return arrays, attrs


def _assert_same_file(a: Path, b: Path) -> None:
    arrays_a, attrs_a = _contents(a)
    arrays_b, attrs_b = _contents(b)
    assert sorted(arrays_a) == sorted(arrays_b)
    for name in arrays_a:
        assert np.array_equal(arrays_a[name], arrays_b[name]), name
    strip = lambda attrs: {k: v for k, v in attrs.items() if k not in TIME_ATTRS}  # noqa: E731
    assert strip(attrs_a) == strip(attrs_b)


class _Stop(Exception):
    pass


def _stop_after(shards: int):
    """A progress callback that interrupts generation after ``shards`` shards were written."""
    calls = []

    def callback(done, total):
        calls.append(done)
        if len(calls) == shards:
            raise _Stop

    return callback


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory) -> Path:
    """The reference: the toy problem generated in one uninterrupted serial run."""
    path = tmp_path_factory.mktemp("data") / "toy.h5"
    return generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=False)


# -- generation ------------------------------------------------------------------------------------
def test_layout_attributes_and_values(toy_file):
    problem = load_problem(TOY)
    info = open_dataset_file(toy_file)
    a = info.attrs
    assert a["complete"] is True and a["schema"] == "sciml-grid-dataset" and a["schema_version"] == 1
    assert (a["problem"], a["fingerprint"], a["params"]) == ("toy", problem.fingerprint(), problem.params)
    assert (a["n"], a["seed"], a["shard_size"], a["n_shards"]) == (N, SEED, SHARD, 6)
    assert Grid.from_dict(a["grid"]) == Grid(9, ndim=2) and Grid.from_dict(a["solve_grid"]) == Grid(
        17, ndim=2
    )
    assert a["problem_description"]["inputs"]["a"]["space"]["kind"] == "sine_series"
    assert a["sciml_version"] == sciml.__version__ and a["input_names"] == ["a", "f", "c"]
    with h5py.File(toy_file, "r") as f:
        for key in ("inputs/a", "inputs/f", "inputs/c", "outputs/u", "outputs/v"):
            assert (
                f[key].shape == (N, 1, 9, 9) and f[key].dtype == np.float32 and f[key].chunks == (1, 1, 9, 9)
            )
        assert np.allclose(np.moveaxis(f["coords"][()], 0, -1), Grid(9, ndim=2).coords())
        assert f["_shards/done"][()].tolist() == [1] * 6
        # Shard k holds exactly make_samples(count, grid, rng_k): the seeding contract.
        for k in (0, 5):
            rows = slice(k * SHARD, min(N, (k + 1) * SHARD))
            inputs, outputs = problem.make_samples(
                rows.stop - rows.start, Grid(9, ndim=2), shard_rng(SEED, k)
            )
            for name in ("a", "f", "c"):
                assert np.array_equal(f["inputs"][name][rows][:, 0], inputs[name].astype(np.float32))
            assert np.array_equal(f["outputs/u"][rows][:, 0], outputs["u"].astype(np.float32))
        assert np.all(f["inputs/c"][()] == 2.0)  # fixed inputs are stored too
        # Shards differ from each other (independent streams).
        assert not np.allclose(f["inputs/a"][0], f["inputs/a"][SHARD])


def test_values_follow_the_reference_in_1d(tmp_path):
    path = generate(_line(), 10, 33, seed=1, path=tmp_path / "line.h5", progress=False, compression="gzip")
    data = load_arrays(path)
    assert data.x.shape == (10, 1, 33) and data.y.shape == (10, 1, 33) and data.grid == Grid(33)
    expected = np.cumsum(data.x.astype(np.float64), axis=-1) * (1 / 32) * 2.0
    np.testing.assert_allclose(data.y, expected, rtol=1e-5, atol=1e-6)
    assert read_attrs(h5py.File(path, "r"))["compression"] == "gzip:4"
    plain = generate(_line(), 10, 33, seed=1, path=tmp_path / "plain.h5", progress=False)
    assert np.array_equal(load_arrays(plain).y, data.y)  # compression changes bytes, not values


def test_existing_file_is_reused_or_refused(toy_file, tmp_path):
    path = tmp_path / "toy.h5"
    shutil.copy(toy_file, path)
    calls = []
    assert (
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=lambda d, t: calls.append(d))
        == path
    )
    assert calls == []  # nothing recomputed
    with pytest.raises(DatasetError, match=r"'seed' differs: requested 8, the file has 7"):
        generate(TOY, N, seed=SEED + 1, path=path, shard_size=SHARD)
    with pytest.raises(DatasetError, match=r"'shard_size' differs"):
        generate(TOY, N, seed=SEED, path=path)
    with pytest.raises(DatasetError, match=r"'n' differs"):
        generate(TOY, N + 1, seed=SEED, path=path, shard_size=SHARD)
    problem = load_problem(TOY)
    other = Problem(
        **{
            **{k: getattr(problem, k) for k in ("name", "inputs", "outputs", "grid", "reference")},
            "params": {**problem.params, "sweeps": 5},
            "solve_stride": 2,
        }
    )
    with pytest.raises(DatasetError, match=r"'params' differs"):
        generate(other, N, seed=SEED, path=path, shard_size=SHARD)
    before = load_arrays(path).y
    generate(other, N, seed=SEED, path=path, shard_size=SHARD, overwrite=True, progress=False)
    after = load_arrays(path)
    assert after.attrs["params"]["sweeps"] == 5 and not np.array_equal(after.y, before)
    # A foreign file under the target name is never touched without overwrite.
    foreign = tmp_path / "foreign.h5"
    foreign.write_text("not a dataset")
    with pytest.raises(DatasetError, match="not an HDF5 file.*overwrite=True"):
        generate(TOY, N, seed=SEED, path=foreign, shard_size=SHARD)
    assert foreign.read_text() == "not a dataset"


def test_interrupted_generation_resumes_identically(toy_file, tmp_path):
    path = tmp_path / "toy.h5"
    with pytest.raises(_Stop):
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=_stop_after(2))
    partial = tmp_path / "toy.h5.partial"
    assert partial.exists() and not path.exists()
    with pytest.raises(DatasetError, match="toy.h5.partial.*generate again"):
        open_dataset_file(path)
    with pytest.raises(DatasetError, match="incomplete file"):
        open_dataset_file(partial)
    with pytest.raises(DatasetError, match="refusing to append.*'seed' differs"):
        generate(TOY, N, seed=SEED + 1, path=path, shard_size=SHARD)
    calls = []
    generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=lambda d, t: calls.append(d))
    assert calls == [12, 16, 20, 22]  # only the 4 missing shards were made
    assert not partial.exists()
    _assert_same_file(path, toy_file)


def test_sigkill_then_resume_is_identical(toy_file, tmp_path):
    path, log = tmp_path / "killed.h5", tmp_path / "progress.log"
    repo = str(Path(sciml.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "SCIML_TOY_HOLD_AT": str(2 * SHARD),  # the child stops after exactly 2 shards, until killed
        "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, str(TOY), str(path), str(N), str(SHARD), str(SEED), str(log)]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 900  # wall clock: generous for a busy machine
        while not (log.exists() and len(log.read_text().splitlines()) >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the generating process made no progress"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)  # the process group of the child started above
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    partial = tmp_path / "killed.h5.partial"
    assert partial.exists() and not path.exists()
    with h5py.File(partial, "r") as f:
        done = f["_shards/done"][()]
    assert 2 <= done.sum() < len(done)
    generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=False)
    _assert_same_file(path, toy_file)


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_end_with_a_killed_parent(tmp_path):
    """SIGKILL of the generating process alone (not its group) must not leave workers in a solve."""
    repo = str(Path(sciml.__file__).resolve().parents[1])
    env = {**os.environ, "SCIML_TOY_SLEEP": "600",  # every reference call outlives the test
           "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, str(TOY), str(tmp_path / "t.h5"), "8", "2", "0", str(tmp_path / "log"), "2"]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, start_new_session=True)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while len(workers) < 2:  # both workers started (and asleep in the reference)
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers never started"
            workers = {p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()}
            time.sleep(0.05)
        time.sleep(2)  # past their initializer
        proc.kill()
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers), "workers outlived the killed parent"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stderr.close()


def test_truncated_partial_starts_over(toy_file, tmp_path):
    path = tmp_path / "toy.h5"
    with pytest.raises(_Stop):
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=_stop_after(3))
    partial = tmp_path / "toy.h5.partial"
    with open(partial, "r+b") as fh:
        fh.truncate(os.path.getsize(partial) // 3)
    with pytest.warns(RuntimeWarning, match="unreadable.*starting over"):
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=False)
    _assert_same_file(path, toy_file)


def test_damaged_shard_is_redone(toy_file, tmp_path):
    path = tmp_path / "toy.h5"
    with pytest.raises(_Stop):
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=_stop_after(3))
    with h5py.File(tmp_path / "toy.h5.partial", "r+") as f:
        f["outputs/u"][SHARD + 1] = 0.0  # shard 1 flagged done, but its data changed behind its checksum
    calls = []
    with pytest.warns(RuntimeWarning, match="shard 1 .* damaged"):
        generate(TOY, N, seed=SEED, path=path, shard_size=SHARD, progress=lambda d, t: calls.append(d))
    assert len(calls) == 4  # shard 1 and the three never written
    _assert_same_file(path, toy_file)


def test_two_workers_give_the_same_file(toy_file, tmp_path):
    path = generate(TOY, N, seed=SEED, path=tmp_path / "w2.h5", shard_size=SHARD, workers=2, progress=False)
    _assert_same_file(path, toy_file)


def test_pickled_and_unpicklable_problems_with_workers(toy_file, tmp_path, monkeypatch):
    # An in-memory problem importable by the workers travels as a pickle.
    monkeypatch.syspath_prepend(str(TOY.parent))
    import _data_toy

    path = generate(_data_toy.problem, N, seed=SEED, path=tmp_path / "p.h5", shard_size=SHARD, workers=2)
    _assert_same_file(path, toy_file)
    # One that cannot be pickled (a lambda) runs serially, with a warning, to the same result.
    serial = generate(_line(), 12, seed=2, path=tmp_path / "serial.h5", shard_size=4)
    lam = _line(reference=lambda inputs, grid, params: _cumsum_reference(inputs, grid, params))
    with pytest.warns(RuntimeWarning, match="cannot be sent to worker processes"):
        parallel = generate(lam, 12, seed=2, path=tmp_path / "lambda.h5", shard_size=4, workers=2)
    assert np.array_equal(load_arrays(serial).y, load_arrays(parallel).y)


def test_workers_that_cannot_rebuild_the_problem_fall_back_to_serial(tmp_path):
    copy = tmp_path / "toy_copy.py"
    shutil.copy(TOY, copy)
    problem = load_problem(copy)
    problem.params["sweeps"] = 2  # changed after loading: the file no longer describes it
    serial = generate(problem, 10, seed=1, path=tmp_path / "serial.h5", shard_size=4)
    with pytest.warns(RuntimeWarning, match="could not rebuild.*fingerprint"):
        parallel = generate(problem, 10, seed=1, path=tmp_path / "parallel.h5", shard_size=4, workers=2)
    _assert_same_file(serial, parallel)
    assert read_attrs(h5py.File(parallel, "r"))["params"]["sweeps"] == 2


def test_progress_bar_counts_samples(tmp_path, capsys):
    generate(_line(), 9, seed=0, path=tmp_path / "bar.h5", shard_size=4, progress=True)
    err = capsys.readouterr().err
    assert "9/9" in err and "sample" in err


def test_generate_checks_its_arguments(tmp_path):
    p = _line()
    with pytest.raises(ConfigError, match="n: expected a positive integer"):
        generate(p, 0, path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="seed"):
        generate(p, 4, seed=-1, path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="seed"):
        generate(p, 4, seed=True, path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="compression"):
        generate(p, 4, compression="zip", path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="progress"):
        generate(p, 4, progress="yes", path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="directory"):
        generate(p, 4, path=tmp_path)
    with pytest.raises(ProblemError, match="no reference solver"):
        generate(_line(reference=None), 4, path=tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="expected a Problem"):
        generate(3.0, 4, path=tmp_path / "x.h5")
    assert not list(tmp_path.iterdir())  # nothing was created


def test_non_finite_values_are_refused_and_finished_shards_kept(tmp_path):
    def blows_up(inputs, grid, params):
        u = np.cumsum(inputs["a"], axis=-1)
        if u.shape[0] == 2:  # only the second, short shard
            u[1, 3] = np.inf
        return {"u": u}

    with pytest.raises(NonFiniteError, match="reference output 'u'") as info:
        generate(_line(reference=blows_up), 6, path=tmp_path / "x.h5", shard_size=4)
    if sys.version_info >= (3, 11):
        assert "shard 1 (samples 4 to 5, seed 0)" in "".join(info.value.__notes__)
    with h5py.File(tmp_path / "x.h5.partial", "r") as f:
        assert f["_shards/done"][()].tolist() == [1, 0]
    # Values that are finite in float64 but overflow float32 are caught by generate itself.
    big = _line(reference=lambda inputs, grid, params: {"u": inputs["a"] * 1e300})
    with pytest.raises(NonFiniteError, match="output 'u'.*beyond float32 range.*shard 0, first at sample 0"):
        generate(big, 4, path=tmp_path / "big.h5")


# -- the schema ------------------------------------------------------------------------------------
def test_attrs_round_trip(tmp_path):
    values = {
        "d": {"a": [1, 2.5], "b": None},
        "l": [1, "x"],
        "t": True,
        "f": False,
        "i": 3,
        "x": 0.25,
        "s": "[not json]",
        "none": None,
    }
    with h5py.File(tmp_path / "a.h5", "w") as f:
        write_attrs(f, values)
        write_attrs(f, {"l": "now a string"})  # a key changing type loses its JSON mark
        got = read_attrs(f)
    assert got == {**values, "l": "now a string"}
    assert type(got["t"]) is bool and type(got["i"]) is int
    with h5py.File(tmp_path / "b.h5", "w") as f, pytest.raises(DatasetError, match="must be a number"):
        write_attrs(f, {"o": object()})


def test_bad_files_are_rejected(toy_file, tmp_path):
    with pytest.raises(DatasetError, match="no dataset file"):
        open_dataset_file(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        open_dataset_file(text)
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["data"] = np.zeros(3)
    with pytest.raises(DatasetError, match="foreign HDF5 file.*'schema'.*\\['data'\\]"):
        GridDataset(tmp_path / "foreign.h5")

    def variant(name, edit):
        path = tmp_path / name
        shutil.copy(toy_file, path)
        with h5py.File(path, "r+") as f:
            edit(f)
        return path

    newer = variant("newer.h5", lambda f: write_attrs(f, {"schema_version": 99}))
    with pytest.raises(DatasetError, match="schema version 99.*upgrade"):
        open_dataset_file(newer)
    incomplete = variant("incomplete.h5", lambda f: write_attrs(f, {"complete": False}))
    with pytest.raises(DatasetError, match="incomplete file.*resume generation"):
        GridDataset(incomplete)
    assert open_dataset_file(incomplete, require_complete=False).n == N
    no_output = variant("no_output.h5", lambda f: f["outputs"].__delitem__("v"))
    with pytest.raises(DatasetError, match="missing dataset /outputs/v"):
        open_dataset_file(no_output)
    no_attr = variant("no_attr.h5", lambda f: f.attrs.__delitem__("seed"))
    with pytest.raises(DatasetError, match=r"missing attribute\(s\) \['seed'\]"):
        open_dataset_file(no_attr)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(toy_file.read_bytes()[:2000])
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        open_dataset_file(truncated)


# -- reading ---------------------------------------------------------------------------------------
def test_dataset_items_channels_and_stride(toy_file):
    full = load_arrays(toy_file, dtype=np.float64)
    ds = GridDataset(toy_file)
    assert len(ds) == N and ds.input_names == ("a", "f", "c") and ds.output_names == ("u", "v")
    item = ds[5]
    assert item["x"].shape == (3, 9, 9) and item["y"].shape == (2, 9, 9) and item["x"].dtype == torch.float32
    assert item["index"] == 5 and np.array_equal(item["x"].numpy(), full.x[5])
    assert np.array_equal(ds[-1]["y"].numpy(), full.y[-1])

    sub = GridDataset(
        toy_file, inputs=["c", "a"], outputs="v", stride=2, indices=[3, 10, 11], dtype=torch.float64
    )
    assert sub.input_names == ("a", "c") and sub.output_names == ("v",)  # the problem's order
    assert sub.grid == Grid(5, ndim=2) and len(sub) == 3
    item = sub[1]
    assert item["x"].shape == (2, 5, 5) and item["x"].dtype == torch.float64 and item["index"] == 10
    assert np.array_equal(item["x"][0].numpy(), full.x[10, 0, ::2, ::2])
    assert np.array_equal(item["y"][0].numpy(), full.y[10, 1, ::2, ::2])
    # Batched fetching: any order, duplicates, the same as one by one.
    batch = ds.__getitems__([7, 2, 3, 2, 21])
    for pos, got in zip([7, 2, 3, 2, 21], batch):
        assert (
            got["index"] == pos
            and torch.equal(got["x"], ds[pos]["x"])
            and torch.equal(got["y"], ds[pos]["y"])
        )
    x, y = sub.tensors()
    assert x.shape == (3, 2, 5, 5) and torch.equal(y[2, 0], torch.from_numpy(full.y[11, 1, ::2, ::2]))

    with pytest.raises(ConfigError, match="stride 3 does not divide"):
        GridDataset(toy_file, stride=3)
    with pytest.raises(UnknownNameError, match="'b'"):
        GridDataset(toy_file, inputs=["b"])
    with pytest.raises(ConfigError, match=r"values in \[0, 22\)"):
        GridDataset(toy_file, indices=[0, 22])
    with pytest.raises(IndexError):
        ds[N]
    with pytest.raises(ConfigError, match="integer index"):
        ds[1.5]


def test_dataloader_workers_open_the_file_themselves(toy_file):
    ds = GridDataset(toy_file, stride=2)
    first = ds[0]  # the parent opens its handle before the workers start
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None and torch.equal(clone[0]["x"], first["x"])
    loader = DataLoader(
        ds, batch_size=5, shuffle=True, num_workers=2, generator=torch.Generator().manual_seed(0)
    )
    seen, xs = [], {}
    for batch in loader:
        assert batch["x"].shape[1:] == (3, 5, 5) and batch["y"].shape[1:] == (2, 5, 5)
        for i, idx in enumerate(batch["index"].tolist()):
            seen.append(idx)
            xs[idx] = batch["x"][i]
    assert sorted(seen) == list(range(N))
    full = load_arrays(toy_file, stride=2)
    assert all(np.array_equal(xs[i].numpy(), full.x[i]) for i in range(N))
    ds.close()


def test_split_indices():
    train, val, test = split_indices(50, [0.6, 0.2, 0.2], seed=3)
    assert (len(train), len(val), len(test)) == (30, 10, 10)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(50))
    again = split_indices(50, [0.6, 0.2, 0.2], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test)))
    assert not np.array_equal(split_indices(50, [0.6, 0.4], seed=4)[0], train)
    first, second = split_indices(10, [7, 2], shuffle=False)
    assert first.tolist() == list(range(7)) and second.tolist() == [7, 8]
    thirds = [len(s) for s in split_indices(7, [1 / 3, 1 / 3, 1 / 3])]
    assert sum(thirds) == 7 and set(thirds) <= {2, 3}  # rounding never loses a sample
    with pytest.raises(ConfigError, match="at most 10"):
        split_indices(10, [8, 3])
    with pytest.raises(ConfigError, match="empty split"):
        split_indices(3, [0.9, 0.1])
    with pytest.raises(ConfigError, match="fractions"):
        split_indices(10, [0.8, 0.5])


# -- normalisers -----------------------------------------------------------------------------------
def _data(seed=0, shape=(40, 2, 9, 9)):
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([3.0, 0.1]).reshape(1, 2, 1, 1)
    shift = torch.tensor([5.0, -1.0]).reshape(1, 2, 1, 1)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale + shift


def test_gaussian_normaliser_channel_and_pointwise():
    x = _data()
    ch = UnitGaussianNormalizer(mode="channel", eps=0.0).fit(x)
    z = ch.encode(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(2, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(2, dtype=x.dtype), atol=1e-12)
    assert torch.allclose(ch.decode(z), x, atol=1e-12)
    assert ch.encode(x[:, :, ::2, ::2]).shape == (40, 2, 5, 5)  # channel statistics: any resolution
    assert ch.encode(x[0]).shape == (2, 9, 9)  # unbatched samples too

    pw = UnitGaussianNormalizer(mode="pointwise").fit(x)
    z = pw.encode(x)
    assert torch.allclose(z.mean(dim=0), torch.zeros(2, 9, 9, dtype=x.dtype), atol=1e-10)
    assert torch.allclose(z.std(dim=0, unbiased=False), torch.ones(2, 9, 9, dtype=x.dtype), atol=1e-3)
    assert torch.allclose(pw.decode(pw.encode(x.float())), x.float(), atol=1e-5)
    with pytest.raises(ShapeError, match="on_stride"):
        pw.encode(x[:, :, ::2, ::2])
    coarse = pw.on_stride(2)
    assert torch.allclose(coarse.encode(x[:, :, ::2, ::2]), z[:, :, ::2, ::2])
    with pytest.raises(ShapeError, match="expected shape"):
        ch.encode(x[:, :1])
    arr = x.numpy()
    assert isinstance(ch.encode(arr), np.ndarray) and np.allclose(ch.decode(ch.encode(arr)), arr)


def test_minmax_identity_and_errors():
    x = _data(1)
    mm = MinMaxNormalizer(low=-1.0, high=1.0, eps=0.0).fit(x)
    z = mm.encode(x)
    assert torch.allclose(z.amin(dim=(0, 2, 3)), -torch.ones(2, dtype=x.dtype))
    assert torch.allclose(z.amax(dim=(0, 2, 3)), torch.ones(2, dtype=x.dtype))
    assert torch.allclose(mm.decode(z), x, atol=1e-12)
    ident = IdentityNormalizer().fit(x)
    assert ident.encode(x) is x and ident.decode(x) is x
    bad = x.clone()
    bad[3, 1, 2, 2] = float("nan")
    for norm in (UnitGaussianNormalizer(), MinMaxNormalizer(), IdentityNormalizer()):
        with pytest.raises(NonFiniteError, match="1 NaN/Inf"):
            norm.fit(bad)
    with pytest.raises(ConfigError, match="not fitted"):
        UnitGaussianNormalizer().encode(x)
    with pytest.raises(UnknownNameError, match="normaliser mode"):
        UnitGaussianNormalizer(mode="global")
    with pytest.raises(ShapeError, match="at least one sample"):
        UnitGaussianNormalizer().fit(x[:0])
    with pytest.raises(ConfigError, match="low < high"):
        MinMaxNormalizer(low=1.0, high=0.0)


def test_streaming_fit_over_a_dataset_matches_the_tensor_fit(toy_file):
    ds = GridDataset(toy_file)
    x, y = ds.tensors()
    for mode in ("channel", "pointwise"):
        streamed = UnitGaussianNormalizer(mode=mode).fit(ds, key="y", batch_size=5)
        direct = UnitGaussianNormalizer(mode=mode).fit(y)
        for name in ("mean", "std"):
            assert torch.allclose(streamed.stats[name], direct.stats[name], rtol=1e-10, atol=1e-12)
    loader = DataLoader(ds, batch_size=6)
    via_loader = MinMaxNormalizer(mode="pointwise").fit(loader, key="x")
    assert torch.equal(via_loader.stats["max"], x.double().amax(dim=0))


def test_normaliser_state_round_trip(tmp_path):
    x = _data(2)
    norms = [
        UnitGaussianNormalizer(mode="pointwise", eps=1e-4).fit(x),
        MinMaxNormalizer(mode="channel", low=-2.0, high=3.0).fit(x),
        IdentityNormalizer(),
        make_normalizer("unit_gaussian", mode="channel").fit(x),
    ]
    torch.save([n.state_dict() for n in norms], tmp_path / "norms.pt")
    states = torch.load(tmp_path / "norms.pt", weights_only=True)
    for norm, state in zip(norms, states):
        back = normalizer_from_state(state)
        assert type(back) is type(norm) and back.mode == norm.mode and back.eps == norm.eps
        assert torch.equal(back.encode(x), norm.encode(x))
    assert normalizer_from_state(states[1]).high == 3.0
    with pytest.raises(UnknownNameError, match="normaliser"):
        normalizer_from_state({"kind": "robust"})
    with pytest.raises(CheckpointError, match="kind 'min_max'"):
        MinMaxNormalizer.from_state(states[0])
    with pytest.raises(CheckpointError, match="lacks 'eps'"):
        normalizer_from_state({"kind": "unit_gaussian", "mode": "channel"})


def test_generation_off_a_terminal_reports_plain_lines(tmp_path, capsys):
    """Logs and CI see progress too: without a terminal (pytest's captured stderr is none), the default
    progress writes plain ``[generate NAME] sample k/n`` lines, and ``progress=False`` writes nothing."""
    generate(TOY, N, seed=SEED, path=tmp_path / "lines.h5", shard_size=SHARD)
    name = load_problem(TOY).name
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"[generate {name}]")]
    assert lines and lines[-1].startswith(f"[generate {name}] sample {N}/{N} (100%)"), lines
    assert "loss" not in lines[-1]
    generate(TOY, N, seed=SEED, path=tmp_path / "quiet.h5", shard_size=SHARD, progress=False)
    assert capsys.readouterr().err == ""
