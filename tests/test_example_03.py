"""examples/03_deeponet_antiderivative.py runs as a user runs it and reaches the paper's accuracy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_03_deeponet_antiderivative(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "03_deeponet_antiderivative.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=1800, cwd=ROOT,  # generous: a busy CI machine
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    rel = float(out.split("mean relative L2 ")[1].split()[0])
    mse = float(out.split("test MSE ")[1].split(",")[0])
    # 150 functions, 10k steps, relative L2 loss: 1.6 % (1.1-1.9 % over ten seeds; the paper's MSE: 2.4 %);
    # another CPU rounds differently and lands elsewhere in that spread
    assert rel < 0.025 and mse < 5e-5, out
    new = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if "relative L2 error of s" in line]
    assert len(new) == 3 and max(new) < 0.1, out  # functions never seen in training, between the sensors
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 10000 and summary["loss"] == "rel_l2" and abs(summary["test_rel_l2_mean"] - rel) < 1e-4
    assert (tmp_path / "run" / "latest").is_file()
