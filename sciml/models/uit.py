"""EIT transformer (Guo, Cao and Chen, ICLR 2023): a U-Net with softmax-free attention, for EIT images.

The network maps PDE-based feature channels ``(B, in_channels, H, W)`` (EIT: the harmonic extension of
each boundary data pair and its two derivatives, 3 channels per current pattern) to the logits
``(B, out_channels, H, W)`` of an inclusion indicator map. It is the U-Net of :mod:`sciml.models.unet`
(same encoder, decoder convolutions, head, and the same handling of any input size ``H, W >= 8``
through a working size; see there) with two kinds of attention added, so ``UIT`` minus its attention
terms is exactly :class:`~sciml.models.unet.UNet`.

Attention (:class:`UITAttention`)
---------------------------------
Queries and keys come from one token set, values from another (possibly the same) on the same grid.
With ``n`` key/value tokens, ``h`` heads and head width ``d_k``:

* per-head layer norm on ``Q`` and ``K`` (:class:`~sciml.models.galerkin.HeadLayerNorm`, one affine
  pair per head, epsilon ``norm_eps``), none on ``V``;
* the **node coordinates** of the grid on the unit square (``'ij'`` order, 2 numbers) are concatenated
  to every head's ``Q``, ``K`` and ``V`` after the norms, as in this package's Galerkin attention, so
  each head has width ``d = d_k + 2``; this is the positional information (no positional encoding);
* **softmax-free** (default): ``out = (Q K^T) V / (n sqrt(d))``, the reference's scaling: a quadrature
  over the ``n`` nodes of a kernel integral with kernel ``q(x) . k(y) / sqrt(d)``. It is evaluated in
  the linear-cost order ``Q (K^T V) / (n sqrt(d))``: the same function without the ``n x n`` matrix,
  ``O(n d^2)`` time and memory. It is equivariant to any permutation of the tokens (applied to the
  query tokens, their coordinates, or consistently to keys, values and their coordinates);
* ``softmax=True`` (the reference's ``ut`` variant): ``out = softmax(Q K^T / sqrt(d)) V``, the usual
  ``n x n`` attention, with the same norms and coordinates;
* the heads are concatenated and merged by ``Linear(h d -> d_model)``.

Where it is used, with ``C_l = dim * 2**l`` channels on level ``l`` (0 finest, ``levels`` coarsest):

* **coarsest level**: self-attention over the ``h w`` tokens of the bottleneck feature ``z``
  (``C_L -> C_L``), added as a residual: ``z <- z + Attn(z, z, z)``;
* **every up block** ``l`` (coarse decoder feature ``y`` with ``C_{l+1}`` channels, encoder skip ``s`` with
  ``C_l`` channels on the grid twice as fine): **cross-attention** as in the reference. Queries and
  keys come from ``y``; values from ``s`` bilinearly downsampled to ``y``'s grid. The result (``C_l``
  channels, coarse grid) is added to the U-Net's halving ``Conv1x1(y)``, and then upsampled x2,
  concatenated with ``s`` and passed through ``DoubleConv(2 C_l -> C_l)``.

Why the reference's cross-attention and not "queries from the fine skip, keys/values from the coarse
feature": all three token sets then live on the **same** coarse grid, so the attention is one
quadrature rule on one grid. The ``1/n`` weights and the coordinates of queries, keys and values
refer to the same nodes. The kernel (which positions are related) is built from the semantically
richer decoder feature, and the integrand is the skip feature, the finer-scale function the
decoder needs at this step. The skip's fine detail that the downsampling loses comes back through
the concatenation after the upsampling. This costs ``O(n_coarse)``. The alternative is well-posed
too, since keys and values share a grid, but its values would be the coarse feature that
``Conv1x1(y)`` already carries.

Configuration
-------------
The reference (``scaomath/eit-transformer``, config ``uit``) uses ``dim=64``, 4 heads, 3 levels, batch
norm and a working size of 128 (channels 64, 128, 256, 512; attention on 16 x 16). The defaults here
are CPU-sized: ``dim=32``, 4 heads, 3 levels, working size 64 (attention on 8 x 8). Apart from the
scale, this differs from the reference in a few ways. There is no separate layer norm on the up
block's output. The coordinates are concatenated instead of a learned or sinusoidal embedding. The
convolutions are bias-free before a norm. The logits are for BCE-with-logits, so the probability is
``sigmoid(logits)``. The reference's evaluation uses ``(tanh(z) + 1) / 2 = sigmoid(2 z)``, which is
the wrong scale for a network trained with BCE on ``sigmoid(z)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .._checks import check_positive_int
from ..errors import ConfigError, ShapeError
from .galerkin import HeadLayerNorm, node_coords
from .registry import register
from .unet import _UNetBackbone, resize

__all__ = ["UIT", "UITAttention"]

_UNIT_SQUARE = ((0.0, 1.0), (0.0, 1.0))


class UITAttention(nn.Module):
    """Multi-head (cross-)attention, softmax-free by default, with coordinates in every head.

    ``query`` ``(B, m, query_channels)``, ``key`` ``(B, n, key_channels)`` and ``value``
    ``(B, n, value_channels)`` to ``(B, m, d_model)``; see the module docstring for the formula.

    Parameters
    ----------
    query_channels, key_channels, value_channels : int
        Widths of the three input token sets (projected to ``d_model`` each).
    d_model, n_heads : int
        Projected width and number of heads (``d_model`` divisible by ``n_heads``).
    pos_dim : int
        Number of coordinates concatenated to each head's ``Q``, ``K`` and ``V``.
    softmax : bool
        False: ``Q (K^T V) / (n sqrt(d))``; True: ``softmax(Q K^T / sqrt(d)) V``.
    norm_eps : float
        Epsilon of the per-head layer norms on ``Q`` and ``K``.
    """

    def __init__(
        self,
        query_channels: int,
        key_channels: int,
        value_channels: int,
        d_model: int,
        n_heads: int,
        pos_dim: int = 2,
        softmax: bool = False,
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        widths = [
            check_positive_int(f"UITAttention {name}", value)
            for name, value in (
                ("query_channels", query_channels),
                ("key_channels", key_channels),
                ("value_channels", value_channels),
            )
        ]
        self.d_model = check_positive_int("UITAttention d_model", d_model)
        self.n_heads = check_positive_int("UITAttention n_heads", n_heads)
        if d_model % n_heads:
            raise ConfigError(
                f"UITAttention: expected d_model divisible by n_heads, got d_model={d_model}, n_heads={n_heads}"
            )
        self.pos_dim = check_positive_int("UITAttention pos_dim", pos_dim)
        if not isinstance(softmax, bool):
            raise ConfigError(f"UITAttention softmax: expected a bool, got {softmax!r}")
        self.softmax = softmax
        self.norm_eps = _check_eps("UITAttention norm_eps", norm_eps)
        self.d_k = d_model // n_heads
        self.query, self.key, self.value = (nn.Linear(w, d_model) for w in widths)
        self.widths = tuple(widths)
        self.norm_q = HeadLayerNorm(n_heads, self.d_k, norm_eps)
        self.norm_k = HeadLayerNorm(n_heads, self.d_k, norm_eps)
        self.merge = nn.Linear(n_heads * (self.d_k + pos_dim), d_model)

    def _heads(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return layer(x).view(b, n, self.n_heads, self.d_k).transpose(1, 2)  # (B, h, n, d_k)

    def _with_pos(self, t: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, h, n, _ = t.shape
        p = (pos if pos.ndim == 3 else pos.unsqueeze(0)).unsqueeze(1).to(t.dtype)
        return torch.cat([t, p.expand(b, h, n, self.pos_dim)], dim=-1)

    def _check(self, what: str, x: torch.Tensor, width: int, batch: int | None, n: int | None) -> None:
        expected = f"({'B' if batch is None else batch}, {'n' if n is None else n}, {width})"
        bad = x.ndim != 3 or x.shape[-1] != width
        bad = bad or (batch is not None and x.shape[0] != batch) or (n is not None and x.shape[1] != n)
        if bad:
            raise ShapeError(f"UITAttention {what}", expected, tuple(x.shape))

    def _check_pos(self, what: str, pos: torch.Tensor, batch: int, n: int) -> None:
        ok = pos.ndim in (2, 3) and tuple(pos.shape[-2:]) == (n, self.pos_dim)
        if not ok or (pos.ndim == 3 and pos.shape[0] != batch):
            expected = f"({n}, {self.pos_dim}) or ({batch}, {n}, {self.pos_dim})"
            raise ShapeError(f"UITAttention {what}", expected, tuple(pos.shape))

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        query_pos: torch.Tensor,
        key_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Attend from ``query`` to ``key``/``value``; ``*_pos`` are coordinates ``(n, pos_dim)`` or
        ``(B, n, pos_dim)``; ``key_pos`` defaults to ``query_pos`` (same grid)."""
        self._check("query", query, self.widths[0], None, None)
        b, m = query.shape[:2]
        self._check("key", key, self.widths[1], b, None)
        n = key.shape[1]
        self._check("value", value, self.widths[2], b, n)
        key_pos = query_pos if key_pos is None else key_pos
        self._check_pos("query coordinates", query_pos, b, m)
        self._check_pos("key coordinates", key_pos, b, n)
        q = self._with_pos(self.norm_q(self._heads(self.query, query)), query_pos)
        k = self._with_pos(self.norm_k(self._heads(self.key, key)), key_pos)
        v = self._with_pos(self._heads(self.value, value), key_pos)
        d = self.d_k + self.pos_dim
        if self.softmax:
            weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d), dim=-1)
            out = torch.matmul(weights, v)
        else:  # (Q K^T) V / (n sqrt(d)) in the order Q (K^T V): no n x n matrix
            kv = torch.matmul(k.transpose(-2, -1), v) / (n * math.sqrt(d))  # (B, h, d, d)
            out = torch.matmul(q, kv)
        return self.merge(out.transpose(1, 2).reshape(b, m, self.n_heads * d))

    def extra_repr(self) -> str:
        kind = "softmax" if self.softmax else "softmax-free"
        return f"{kind}, widths={self.widths}, d_model={self.d_model}, heads={self.n_heads}, pos_dim={self.pos_dim}"


def _check_eps(name: str, value: Any) -> float:
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )
    if not ok:
        raise ConfigError(f"{name}: expected a finite number > 0, got {value!r}")
    return float(value)


def _tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, H W, C)``, row-major (``'ij'``) node order."""
    return x.flatten(2).transpose(1, 2)


@register("uit")
class UIT(_UNetBackbone):
    """EIT transformer: U-Net with softmax-free self- and cross-attention (see the module docstring).

    Maps ``(B, in_channels, H, W)`` to logits ``(B, out_channels, H, W)`` for any ``H, W >= 8``.

    Parameters
    ----------
    in_channels, out_channels : int
        Input channels (3 per current pattern in EIT) and output logit maps.
    dim : int
        Channels of the finest level (level ``l`` has ``dim * 2**l``); divisible by ``heads``.
        Reference 64.
    heads : int
        Attention heads on every level. Reference 4.
    levels : int
        Down (and up) blocks, 1 to 8. Reference 3.
    input_size : int or None
        Working size ``N`` (every input runs at ``N x N``; a multiple of ``2**levels`` with at least
        ``2 * 2**levels``), or None to round each axis to the nearest multiple of ``2**levels`` (notes of
        :mod:`sciml.models.unet`). Reference 128.
    softmax : bool
        Softmax attention (the reference's ``ut``) instead of the softmax-free default.
    norm : {"batch", "group"}
        Normalisation in every ``DoubleConv`` (the reference uses batch norm).
    norm_eps : float
        Epsilon of the per-head layer norms on ``Q`` and ``K``.

    Examples
    --------
    >>> net = UIT(3, 1, dim=8, heads=2)
    >>> net(torch.randn(2, 3, 50, 37)).shape
    torch.Size([2, 1, 50, 37])
    """

    _label = "UIT"

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 1,
        dim: int = 32,
        heads: int = 4,
        levels: int = 3,
        input_size: int | None = 64,
        softmax: bool = False,
        norm: str = "batch",
        norm_eps: float = 1e-5,
    ) -> None:
        super().__init__(in_channels, out_channels, dim, levels, input_size, norm)
        self.heads = check_positive_int("UIT heads", heads)
        if self.dim % self.heads:
            raise ConfigError(f"UIT: expected dim divisible by heads, got dim={dim}, heads={heads}")
        if not isinstance(softmax, bool):
            raise ConfigError(f"UIT softmax: expected a bool, got {softmax!r}")
        self.softmax = softmax
        self.norm_eps = _check_eps("UIT norm_eps", norm_eps)
        ch = self.channels
        top = ch[-1]
        self.self_attn = UITAttention(top, top, top, top, heads, 2, softmax, norm_eps)
        self.cross_attn = nn.ModuleList(
            UITAttention(ch[i + 1], ch[i + 1], ch[i], ch[i], heads, 2, softmax, norm_eps)
            for i in range(self.levels)
        )

    @staticmethod
    def _coords(x: torch.Tensor) -> torch.Tensor:
        """Node coordinates ``(H W, 2)`` of ``x``'s grid on the unit square, in token order."""
        return node_coords(x.shape[2:], _UNIT_SQUARE, x).flatten(1).transpose(0, 1)

    def _bottleneck(self, h: torch.Tensor) -> torch.Tensor:
        t = _tokens(h)
        a = self.self_attn(t, t, t, self._coords(h))
        return h + a.transpose(1, 2).reshape(h.shape)

    def _merge(self, i: int, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        b, _, hc, wc = coarse.shape
        t = _tokens(coarse)
        v = _tokens(resize(skip, (hc, wc)))
        a = self.cross_attn[i](t, t, v, self._coords(coarse))
        return self.up_proj[i](coarse) + a.transpose(1, 2).reshape(b, -1, hc, wc)

    def extra_repr(self) -> str:
        kind = "softmax" if self.softmax else "softmax-free"
        return f"{super().extra_repr()}, heads={self.heads}, {kind}"
