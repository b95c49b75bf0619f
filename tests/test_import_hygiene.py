"""`import sciml` has no side effects, and deepxde's (imported when a Domain is first used) are contained.

Each check runs in a fresh interpreter with an empty temporary HOME and working directory, so that
what the import prints, writes, imports and initialises can be observed without interference from
the test session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "deepxde", "pyvista", "h5py", "matplotlib", "meshio", "vtk")


def _run(code: str, home: Path, cwd: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("DDE_BACKEND", "DDEBACKEND", "MPLCONFIGDIR")}
    environ.update(HOME=str(home), PYTHONPATH=str(REPO), **env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=environ,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    # matplotlib says this when a fresh MPLCONFIGDIR's font cache takes over 5 s to build (a busy machine)
    stderr = "".join(ln for ln in proc.stderr.splitlines(True) if "building the font cache" not in ln)
    assert stderr == "", f"unexpected stderr: {proc.stderr!r}"
    lines = proc.stdout.splitlines()
    # The child prints exactly one line, the JSON result: anything else was printed by an import.
    assert len(lines) == 1, f"unexpected output: {proc.stdout!r}"
    return json.loads(lines[0])


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_import_sciml_is_quiet_and_light(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    result = _run(f"""
        import json, sys, time
        start = time.perf_counter()
        import sciml, sciml.fields, sciml.geometry
        from sciml.geometry import Domain, Mesh, MeshReport
        plate = Domain.rectangle([0, 0], [1, 1]) - Domain.disk([0.5, 0.5], 0.2)  # no deepxde yet
        seconds = time.perf_counter() - start
        heavy = [m for m in {HEAVY!r} if m in sys.modules]
        cuda = "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized()
        print(json.dumps({{"seconds": seconds, "heavy": heavy, "cuda": cuda, "ndim": plate.ndim}}))
    """, home, cwd)
    # Light means no heavy module imported (asserted here); how fast that is depends on the machine's load.
    assert result["heavy"] == [] and result["cuda"] is False and result["ndim"] == 2
    assert _files(home) == [] and _files(cwd) == []


def test_using_a_domain_contains_deepxde(tmp_path):
    home, cwd, mpl = tmp_path / "home", tmp_path / "cwd", tmp_path / "mpl"
    for d in (home, cwd, mpl):
        d.mkdir()
    result = _run("""
        import json, os, sys
        import torch
        torch.set_default_dtype(torch.float64)  # a user's setting that must survive
        before = (str(torch.get_default_dtype()), str(torch.get_default_device()))
        from sciml.geometry import Domain
        disk = Domain.disk([0, 0], 1)
        x = disk.sample_interior(100, method="sobol", seed=0)
        ok = bool(disk.inside(x).all())
        import deepxde
        print(json.dumps({
            "before": before,
            "after": (str(torch.get_default_dtype()), str(torch.get_default_device())),
            "deepxde": "deepxde" in sys.modules,
            "ok": ok,
            "dde_backend_left": "DDE_BACKEND" in os.environ,
            "home": os.environ["HOME"],
            "precision": deepxde.config.real.precision,
            "backend": deepxde.backend.backend_name,
        }))
    """, home, cwd, MPLCONFIGDIR=str(mpl))  # matplotlib (imported by deepxde) keeps its cache there
    assert result["deepxde"] and result["ok"]
    assert result["after"] == result["before"] == ["torch.float64", "cpu"]
    assert result["backend"] == "pytorch" and not result["dde_backend_left"]
    assert result["home"] == str(home) and result["precision"] == 32
    assert _files(home) == [], "deepxde wrote into HOME"  # e.g. ~/.deepxde/config.json
    assert _files(cwd) == []


def test_contained_import_restores_what_a_noisy_module_changes(tmp_path, monkeypatch, capsys):
    """The containment itself, on a fake module that does everything deepxde may do (and more)."""
    torch = pytest.importorskip("torch")
    from sciml.geometry._deepxde import contained_import

    home = tmp_path / "home"
    home.mkdir()
    lib = tmp_path / "lib"
    lib.mkdir()
    noisy = """
        import os, sys, warnings
        import torch
        print("Using backend: fake")
        print("Other supported backends: none", file=sys.stderr)
        warnings.warn("fake deprecation")
        config = os.path.join(os.path.expanduser("~"), ".fakelib")
        os.makedirs(config, exist_ok=True)
        open(os.path.join(config, "config.json"), "w").write('{"backend": "fake"}')
        torch.set_default_dtype(torch.float64)
        torch.set_default_device("meta")
        BACKEND = os.environ.get("FAKE_BACKEND")
    """
    for name in ("noisy_fake_a", "noisy_fake_b"):
        (lib / f"{name}.py").write_text(textwrap.dedent(noisy))
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FAKE_BACKEND", raising=False)
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    try:
        module = contained_import("noisy_fake_a", env={"FAKE_BACKEND": "chosen"})
        assert module.BACKEND == "chosen" and "FAKE_BACKEND" not in os.environ
        assert torch.get_default_dtype() == dtype and torch.get_default_device() == device
        assert torch.zeros(1).device.type == "cpu"
        assert contained_import("noisy_fake_a") is module  # already imported: returned untouched
        monkeypatch.setenv("FAKE_BACKEND", "user")  # a user's own setting wins
        assert contained_import("noisy_fake_b", env={"FAKE_BACKEND": "chosen"}).BACKEND == "user"
        assert os.environ["FAKE_BACKEND"] == "user"
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(None if device.type == "cpu" else device)
        for name in ("noisy_fake_a", "noisy_fake_b"):
            sys.modules.pop(name, None)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert os.environ["HOME"] == str(home) and _files(home) == []
