"""Inverse Darcy flow: the coefficient ``a`` from a noisy measurement of the solution ``u``.

The forward problem is ``problems/darcy.py`` (``-div(a grad u) = 1`` on the unit square, ``u = 0`` on
the boundary, ``a`` in {3, 12} from a thresholded Gaussian random field, solved five times finer
and subsampled). The inverse map learned here is the Galerkin Transformer's inverse example
(Cao 2021, section 4.3): ``u`` observed on the data grid with noise, ``a`` sought on a coarser grid.

* **Input** ``u``: the solution on the data grid (85 x 85 by default) plus relative Gaussian noise,
  ``u + noise * rms(u) * xi`` per sample, ``xi`` standard normal at every node (``noise = 0.01`` is
  1% noise: the noise's L2 norm is about 1% of the solution's). The reference code multiplies the
  normalised input by ``1 + eps * U(0, 1)`` instead.
* **Output** ``a`` on ``output_size`` = 22 nodes per axis (every fourth node of 85, of 43 every second,
  of 169 every eighth): the coefficient at those nodes, no averaging, as the reference code strides
  its 421-node coefficient to 36 nodes for its 141-node input. Datasets hold ``a`` on the data grid
  (one grid per sciml dataset); :class:`~sciml.operators.OperatorTask` compares on the coarse nodes,
  and a model may answer there directly (``GalerkinTransformer(decoder="pointwise", out_size=22)``)
  or on the data grid (FNO, MgNO: read at the coarse nodes).

The same seed gives the same ``(a, u)`` pairs as ``darcy`` at every noise level (the noise comes from
an independent random stream), so ``make_problem(noise=0.1)`` and ``make_problem(noise=0.01)`` differ in
the noise only.

    sciml generate darcy_inverse --n 1100 --resolution 85      # 1% noise, a on 22 x 22
    python -c "import sciml; p = sciml.load_problem('problems/darcy_inverse.py')"
"""

from __future__ import annotations

import dataclasses

from sciml.problem import InverseProblem, Problem, load_problem

NOISE = 0.01
OUTPUT_SIZE = 22


def observe(inputs, outputs, grid, params):
    """The measurement is the solution itself at every node (noise is added by the InverseProblem)."""
    return {"u": outputs["u"]}


def make_problem(noise: float = NOISE, output_size: int | None = OUTPUT_SIZE) -> Problem:
    """Darcy inverted: ``u`` with relative Gaussian ``noise`` -> ``a`` on ``output_size`` nodes per axis."""
    forward = dataclasses.replace(load_problem("darcy"), observe=observe)
    return InverseProblem.from_forward(forward, "a", ["u"], name="darcy_inverse", noise=noise,
                                       output_size=output_size)


problem = make_problem()
