"""The fully convolutional network of DCDM (Kaneda et al., ICML 2023), in two and three dimensions.

DCDM (:mod:`sciml.linalg.dcdm`) asks a network ``f`` for a search direction ``q = f(r)`` that
approximates ``A^{-1} r`` for the residual ``r`` of a pressure-Poisson system laid on its grid. The
reference network (``src/train.py`` of the authors' code, 3-D only) has 16 channels everywhere, 3-point
("same", zero-padded) convolutions and one pooling level:

* a linear 3-point convolution from the input channels to ``channels``;
* ``blocks_before`` residual pairs at full resolution;
* an average pool by 2 per axis;
* ``blocks_coarse`` residual pairs on the coarse grid;
* a nearest-neighbour upsampling by 2 back to the exact fine size, plus a skip connection from the
  full-resolution features that were pooled;
* ``blocks_after`` residual pairs;
* a 1x1 convolution to one channel (the reference's ``Dense(1)``), multiplied by the fluid mask.

Residual pairs
--------------
Every pair is the reference's form, ``x <- x + relu(conv(relu(conv(x))))``: both convolutions carry a
bias and a ReLU, and the sum comes after the second activation. The reference's counts are 2/3/2 at
64^3 and 3/5/3 at 128^3. Its full-resolution part before the pool is not quite two pairs: it has the
same four convolutions, but only one of them has a skip connection. Here every pair has one, so
``blocks_before`` means the same thing as the other two counts. The number of weights is the same
as the reference's.

Grids of any size
-----------------
The reference needs even sizes (64, 128, 256). Here an axis of ``n`` cells pools to ``ceil(n / 2)``
cells: the last window of an odd axis holds a single cell and averages over that cell alone, as Keras'
``padding='same'`` pooling does (``ceil_mode=True`` in torch, whose clipped windows divide by the
cells they actually hold). The coarse grid is upsampled by repeating each cell twice per axis (coarse
cell ``i`` covers fine cells ``2 i`` and ``2 i + 1``) and then cropped to the fine size.

The mask channel (beyond the paper)
-----------------------------------
The reference sees only the residual. Solid cells appear there as zeros, but a zero residual in a
fluid cell looks the same. With ``mask_channel=True`` (the default) the fluid mask (1 in fluid, 0 in
solid cells) is a second input channel. The network then knows where the obstacles are, so it can
learn that pressure does not pass through their Neumann faces, and one network can serve systems with
different obstacle layouts. Set ``mask_channel=False`` for the paper's single-channel network. In both
cases the output is multiplied by the mask, so solid cells get exactly 0. They are not unknowns of the
system (pitfall 1.9 of the research note: the reference let them leak into its dot products).

Size
----
A 3-point convolution with 16 channels in and out has ``16 * 16 * 3^d + 16`` weights. With the default
2/3/2 pairs the 2-D network has 32,801 parameters (128 KiB in float32) and the 3-D one 97,889.
Without the mask channel the 3-D count is 97,457, the same as the reference's.
The network is built in float32 (torch's default dtype).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_int_at_least, check_positive_int
from ..errors import ConfigError, ShapeError
from .registry import register

__all__ = ["DCDMNet", "coarse_shape"]

_CONV: dict[int, type[nn.Module]] = {2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {2: F.avg_pool2d, 3: F.avg_pool3d}


def coarse_shape(shape: Sequence[int]) -> tuple[int, ...]:
    """The grid after the network's one pooling step: each axis from ``n`` to ``ceil(n / 2)`` cells.

    >>> coarse_shape((17, 16))
    (9, 8)
    """
    return tuple((int(n) + 1) // 2 for n in shape)


class _ResidualPair(nn.Module):
    """``x <- x + relu(conv(relu(conv(x))))``: the reference's residual pair."""

    def __init__(self, channels: int, ndim: int) -> None:
        super().__init__()
        conv = _CONV[ndim]
        self.conv1 = conv(channels, channels, 3, padding=1)
        self.conv2 = conv(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.conv2(F.relu(self.conv1(x))))


@register("dcdm_net")
class DCDMNet(nn.Module):
    """DCDM's network: ``(B, 1, *grid)`` residual (and mask) to a ``(B, 1, *grid)`` search direction.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimension of the grid.
    channels : int
        Channels of every hidden layer (16 in the reference).
    mask_channel : bool
        Give the fluid mask to the network as a second input channel (beyond the paper; see the module
        notes). The output is multiplied by the mask whatever this is.
    blocks_before, blocks_coarse, blocks_after : int
        Residual pairs at full resolution before the pool, on the coarse grid, and at full resolution
        after the upsampling (the reference uses 2/3/2 at 64^3 and 3/5/3 at 128^3). Each may be 0.

    Examples
    --------
    >>> net = DCDMNet(ndim=2)
    >>> b = torch.randn(3, 1, 17, 12)
    >>> mask = torch.ones(3, 1, 17, 12)
    >>> net(b, mask).shape
    torch.Size([3, 1, 17, 12])
    """

    #: A network trained on one grid spacing can be applied on another (the reference applies its
    #: 64^3 weights at 128^3 and 256^3). DCDM tolerates a poorer direction, because every direction
    #: is A-orthogonalised and line-searched, but the quality of the directions is not guaranteed.
    resolution_invariant = False

    def __init__(
        self,
        ndim: int = 2,
        channels: int = 16,
        mask_channel: bool = True,
        blocks_before: int = 2,
        blocks_coarse: int = 3,
        blocks_after: int = 2,
    ) -> None:
        super().__init__()
        if ndim not in (2, 3) or isinstance(ndim, bool):
            raise ConfigError(f"DCDMNet ndim: expected 2 or 3, got {ndim!r}")
        if not isinstance(mask_channel, bool):
            raise ConfigError(f"DCDMNet mask_channel: expected a bool, got {mask_channel!r}")
        self.ndim = int(ndim)
        self.channels = check_positive_int("DCDMNet channels", channels)
        self.mask_channel = mask_channel
        counts = [check_int_at_least(f"DCDMNet {name}", value, 0) for name, value in
                  (("blocks_before", blocks_before), ("blocks_coarse", blocks_coarse),
                   ("blocks_after", blocks_after))]
        conv = _CONV[self.ndim]
        self.in_channels = 2 if mask_channel else 1
        # The reference's first layer is linear: the residual enters the residual stream unclipped.
        self.stem = conv(self.in_channels, self.channels, 3, padding=1)
        self.before = nn.Sequential(*[_ResidualPair(self.channels, self.ndim) for _ in range(counts[0])])
        self.coarse = nn.Sequential(*[_ResidualPair(self.channels, self.ndim) for _ in range(counts[1])])
        self.after = nn.Sequential(*[_ResidualPair(self.channels, self.ndim) for _ in range(counts[2])])
        self.head = conv(self.channels, 1, 1)

    def _check(self, b: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The mask as a float tensor of ``b``'s shape (all ones when None); ShapeError otherwise."""
        if not isinstance(b, torch.Tensor) or b.ndim != self.ndim + 2 or b.shape[1] != 1:
            got = tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
            raise ShapeError("DCDMNet input", f"(batch, 1{', *' * self.ndim}) for a {self.ndim}-D grid", got)
        if mask is None:
            return torch.ones_like(b)
        if not isinstance(mask, torch.Tensor):
            raise ShapeError("DCDMNet mask", f"a tensor broadcastable to {tuple(b.shape)}",
                             type(mask).__name__)
        if mask.ndim == self.ndim:  # a bare grid: the same mask for every sample
            mask = mask.reshape(1, 1, *mask.shape)
        if mask.ndim != b.ndim or mask.shape[1] != 1 or mask.shape[2:] != b.shape[2:] \
                or mask.shape[0] not in (1, b.shape[0]):
            raise ShapeError("DCDMNet mask", f"(1 or {b.shape[0]}, 1, {', '.join(map(str, b.shape[2:]))})",
                             tuple(mask.shape))
        return mask.to(dtype=b.dtype, device=b.device).expand_as(b)

    def forward(self, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The search direction for right-hand sides ``b``.

        Parameters
        ----------
        b : torch.Tensor ``(B, 1, *grid)``
            Residuals (or right-hand sides) laid on the grid, zero in solid cells.
        mask : torch.Tensor or None
            Fluid mask, ``(B or 1, 1, *grid)`` or ``grid``-shaped, 1 in fluid and 0 in solid cells;
            None: every cell is fluid.

        Returns
        -------
        torch.Tensor ``(B, 1, *grid)``
            The direction, exactly 0 in solid cells.
        """
        mask = self._check(b, mask)
        x = torch.cat([b, mask], dim=1) if self.mask_channel else b
        fine = self.before(self.stem(x))
        # ceil_mode: an odd axis keeps its last cell as a one-cell window (see the module notes).
        coarse = self.coarse(_POOL[self.ndim](fine, 2, 2, ceil_mode=True))
        up = coarse
        for axis in range(2, 2 + self.ndim):  # repeat each coarse cell twice, then crop odd axes
            up = up.repeat_interleave(2, dim=axis).narrow(axis, 0, fine.shape[axis])
        x = self.after(up + fine)
        return self.head(x) * mask

    def extra_repr(self) -> str:
        return (f"ndim={self.ndim}, channels={self.channels}, mask_channel={self.mask_channel}, "
                f"blocks=({len(self.before)}, {len(self.coarse)}, {len(self.after)})")
