"""The EIT transformer against a U-Net and an FNO on the same inclusion data, at 0, 5 and 20% noise.

EIT (``problems/eit_inclusions.py``): boundary voltages of 16 trigonometric current patterns on a
33 x 33 grid (Neumann-to-Dirichlet data, mean zero) -> the 0/1 map of 1 to 4 elliptical inclusions of
conductivity 10 in a background of 1. Methods: the **EIT transformer** (``uit``: the U-Net with
softmax-free self-attention at the coarsest level and cross-attention in the decoder), a plain
**U-Net** (``unet``), both on the measurements' harmonic extensions and their gradients (48 channels:
the paper's PDE-based feature map, ``extended_net``), and an **FNO** on the harmonic extensions
(``extended_fno``). The networks train once on noise-free data with the weighted binary cross-entropy
(the paper's loss; FNO on the same loss) and are tested with multiplicative noise at 0, 5 and 20% (the
paper's levels; the paper's own evaluation script cannot add noise, see the research note). Errors are
the relative L1 and L2 of the *probability* map (sigmoid of the logits: what is reported).

Differences from the paper: a 33 x 33 grid instead of 201 x 201 with a 128 x 128 network input, dims
16 instead of 64, 16 current patterns as separate channels, fewer samples and epochs (``--n-train``,
``--epochs``), data from sciml's finite-volume NtD model rather than the authors' (unreleased) set.

Run: ``python benchmarks/inverse_eit.py``; ``--quick``. Everything else as ``inverse_calderon.py`` (the
same driver, with this problem, these methods and noise levels).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "inverse_eit.json"

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import inverse_calderon

    inverse_calderon.main(problem="eit_inclusions", results=RESULTS, methods=("uit", "unet", "extended_fno"),
                          noise_levels=(0.0, 0.05, 0.2), loss=None, description=__doc__.splitlines()[0])
