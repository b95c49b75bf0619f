"""The network of the data-free mesh mover (:mod:`sciml.meshmove.dmm`): ``phi(xi; u)``.

A CNN encodes the field (normalised to mean 0 and std 1, pooled to a fixed size so that any grid size
works) into a code; an MLP over (Fourier features of the computational point ``xi``, code) gives the
potential ``phi`` whose gradient moves the mesh, ``x = xi + grad phi``. Smooth activations only: the
Monge-Ampere loss holds second derivatives of ``phi``. The last layer starts at zero, so an untrained
network gives the uniform mesh.

Answering (:class:`~sciml.meshmove.dmm.DMM`) uses :meth:`DMMNet.encode_inference` and
:meth:`DMMNet.grad_potential`, the MLP's input derivative written out (no autograd graph), equal to
:meth:`DMMNet.encode` and the autograd gradient of :meth:`DMMNet.potential` up to float32 round-off;
training differentiates :meth:`DMMNet.potential` with autograd.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_name, check_positive_int
from ..errors import ConfigError, ShapeError
from .registry import register

__all__ = ["DMMNet"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "softplus": nn.Softplus, "silu": nn.SiLU}


@register("dmm_net")
class DMMNet(nn.Module):
    """``phi(xi; u)``: a CNN code of the field and an MLP over (features of ``xi``, code).

    Parameters
    ----------
    periodic : bool
        Periodic potential: ``xi`` enters through ``cos, sin(2 pi k xi)``, ``k = 1..harmonics``, and the
        convolutions wrap around. Otherwise ``xi`` enters as ``2 xi - 1`` plus ``cos, sin(pi k xi)``.
    channels, latent : int
        Channels of the encoder's first (strided) convolution, twice as many in the next two; code size.
    hidden : list of int
        Widths of the MLP's hidden layers (its cost per node dominates the answering time).
    pool : int
        The feature maps are average-pooled to ``pool x pool`` whatever the grid size (24^2 and 49^2 fields
        use the same weights).
    harmonics : int
        Fourier features of ``xi`` per axis (0: the raw coordinates only, non-periodic).
    activation : {"tanh", "softplus", "silu"}
        Smooth non-linearity.
    """

    def __init__(self, periodic: bool = False, channels: int = 16, latent: int = 64,
                 hidden: Sequence[int] = (48, 48, 48), pool: int = 6, harmonics: int = 2,
                 activation: str = "tanh") -> None:
        super().__init__()
        if not isinstance(periodic, bool):
            raise ConfigError(f"DMMNet: expected a bool periodic, got {periodic!r}")
        check_name("DMMNet activation", activation, _ACTIVATIONS)
        channels, latent, pool = (check_positive_int(f"DMMNet {k}", v)
                                  for k, v in (("channels", channels), ("latent", latent), ("pool", pool)))
        hidden = [check_positive_int("DMMNet hidden width", h) for h in hidden]
        if not hidden:
            raise ConfigError("DMMNet: expected at least one hidden layer width")
        if isinstance(harmonics, bool) or not isinstance(harmonics, int) or harmonics < (1 if periodic else 0):
            raise ConfigError(f"DMMNet: expected harmonics >= {1 if periodic else 0}, got {harmonics!r}")
        self.periodic, self.harmonics, self.activation = periodic, harmonics, activation
        act = _ACTIVATIONS[activation]
        pad = "circular" if periodic else "replicate"
        self.encoder = nn.Sequential(
            nn.Conv2d(1, channels, 5, stride=2, padding=2, padding_mode=pad), act(),
            nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, padding_mode=pad), act(),
            nn.Conv2d(2 * channels, 2 * channels, 3, stride=2, padding=1, padding_mode=pad), act(),
            nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
            nn.Linear(2 * channels * pool * pool, latent), act(),
        )
        n_feat = 4 * harmonics if periodic else 2 + 4 * harmonics
        # The first layer of the MLP on concat(features, code), split so that the code's part is
        # computed once per field instead of once per point.
        self.point_in = nn.Linear(n_feat, hidden[0])
        self.code_in = nn.Linear(latent, hidden[0], bias=False)
        layers: list[nn.Module] = [act()]
        for a, b in zip(hidden[:-1], hidden[1:]):
            layers += [nn.Linear(a, b), act()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(hidden[-1], 1)
        nn.init.zeros_(self.head.weight)  # phi = const at first: training starts from the uniform mesh
        nn.init.zeros_(self.head.bias)

    def encode(self, u: Tensor) -> Tensor:
        """Code ``(B, latent)`` of fields ``(B, H, W)``, each normalised to mean 0 and std 1 first."""
        return self.encoder(self._normalise(u))

    def _normalise(self, u: Tensor) -> Tensor:
        """Fields ``(B, H, W)`` normalised to mean 0 and std 1, as ``(B, 1, H, W)``."""
        if u.ndim != 3 or min(u.shape[1:]) < 4:
            raise ShapeError("DMMNet fields", "(B, H, W) with H, W >= 4", tuple(u.shape))
        mean = u.mean(dim=(1, 2), keepdim=True)
        std = u.std(dim=(1, 2), keepdim=True)
        scale = u.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1.0)
        flat = std <= 1e-6 * scale  # a constant field: nothing to resolve, no division by ~0
        z = torch.where(flat, torch.zeros_like(u), (u - mean) / torch.where(flat, torch.ones_like(std), std))
        return z[:, None]

    def encode_inference(self, u: Tensor) -> Tensor:
        """:meth:`encode` for answering: with ``tanh``, each convolution or linear layer and the ``tanh``
        after it become one layer with folded weights and a sigmoid (as in :meth:`_folded_weights`: the
        layer's input is ``2 s - 1``, the padding being circular or replicated, never zeros, a constant
        input stays one). A sigmoid costs a third of a ``tanh`` on CPUs. Equal to :meth:`encode` up to
        float32 round-off; not differentiable."""
        if self.activation != "tanh":
            with torch.no_grad():
                return self.encode(u)
        with torch.no_grad():
            x, alpha, beta = self._normalise(u), 1.0, 0.0  # the true values are alpha * x + beta
            layers = list(self.encoder)
            for i, layer in enumerate(layers):
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    dims = tuple(range(1, layer.weight.ndim))
                    weight = (2.0 * alpha) * layer.weight
                    bias = 2.0 * (layer.bias + beta * layer.weight.sum(dim=dims))
                    if isinstance(layer, nn.Conv2d):
                        x = layer._conv_forward(x, weight, bias)
                    else:
                        x = nn.functional.linear(x, weight, bias)
                    x, alpha, beta = x.sigmoid_(), 2.0, -1.0
                elif not (isinstance(layer, nn.Tanh) and isinstance(layers[i - 1], (nn.Conv2d, nn.Linear))):
                    x = layer(x)  # average pooling and flattening commute with x -> alpha x + beta
            return alpha * x + beta

    def features(self, xi: Tensor) -> Tensor:
        """Features ``(..., F)`` of points ``(..., 2)`` in the unit square."""
        k = torch.arange(1, self.harmonics + 1, dtype=xi.dtype, device=xi.device)
        angle = (2.0 if self.periodic else 1.0) * math.pi * xi[..., None] * k  # (..., 2, K)
        parts = [torch.cos(angle).flatten(-2), torch.sin(angle).flatten(-2)]
        if not self.periodic:
            parts.insert(0, 2.0 * xi - 1.0)
        return torch.cat(parts, dim=-1)

    def potential(self, code: Tensor, xi: Tensor) -> Tensor:
        """``phi`` ``(B, P)`` at points ``xi`` ``(B, P, 2)`` for codes ``(B, latent)``."""
        hid = self.point_in(self.features(xi)) + self.code_in(code)[:, None, :]
        return self.head(self.trunk(hid))[..., 0]

    def forward(self, u: Tensor, xi: Tensor) -> Tensor:
        """``phi`` ``(B, P)`` of fields ``(B, H, W)`` at points ``(B, P, 2)``."""
        return self.potential(self.encode(u), xi)

    # -- the inference path: grad phi without autograd ----------------------------------------------------
    def feature_slopes(self, xi: Tensor) -> tuple[Tensor, Tensor]:
        """Derivatives of the features of points ``xi`` ``(..., 2)``: ``(..., F)``, each feature's derivative
        along the one axis it depends on, and that axis as a 0/1 matrix ``(F, 2)``."""
        k = torch.arange(1, self.harmonics + 1, dtype=xi.dtype, device=xi.device)
        omega = (2.0 if self.periodic else 1.0) * math.pi * k  # d angle / d xi
        angle = (2.0 if self.periodic else 1.0) * math.pi * xi[..., None] * k  # as in features()
        parts = [(-torch.sin(angle) * omega).flatten(-2), (torch.cos(angle) * omega).flatten(-2)]
        axis = [a for _ in range(2) for a in range(2) for _ in range(self.harmonics)]
        if not self.periodic:
            parts.insert(0, torch.full_like(xi, 2.0))
            axis = [0, 1, *axis]
        axes = torch.zeros(len(axis), 2, dtype=xi.dtype, device=xi.device)
        axes[torch.arange(len(axis), device=xi.device), torch.tensor(axis, device=xi.device)] = 1.0
        return torch.cat(parts, dim=-1), axes

    def _folded_weights(self) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor], float]:
        """Forward ``(bias, weight^T)`` of the trunk's layers, backward matrices (last layer first, then
        ``point_in``'s) with the head folded into the first, and the scale of the first layer's input.

        For ``tanh`` the hidden values are carried as ``s = sigmoid(2 a) = (1 + tanh a) / 2``: the next
        pre-activation doubled is ``4 W s + 2 (b - W 1)`` and the slope ``1 - tanh^2 a`` is ``4 (s - s^2)``, so
        each layer costs one sigmoid and the constants live in the weights. Other activations: as they are.
        """
        lins = [m for m in self.trunk if isinstance(m, nn.Linear)]
        head = self.head.weight[0]
        if self.activation == "tanh":
            forward = [(2.0 * (m.bias - m.weight.sum(dim=1)), (4.0 * m.weight).t().contiguous()) for m in lins]
            backward = [4.0 * m.weight for m in reversed(lins)] + [self.point_in.weight]
            head, scale = 4.0 * head, 2.0
        else:
            forward = [(m.bias, m.weight.t().contiguous()) for m in lins]
            backward = [m.weight for m in reversed(lins)] + [self.point_in.weight]
            scale = 1.0
        backward[0] = backward[0] * head[:, None]
        # point_in's matrix padded with zero columns to a multiple of 16: an 8-column GEMM ran at a fifth of
        # the speed of a 16-column one (measured on one AVX2 thread: 4-6 against 20-30 GMAC/s), so the
        # padded one takes less time.
        width = backward[-1].shape[1]
        backward[-1] = nn.functional.pad(backward[-1], (0, -width % 16))
        return forward, [w.contiguous() for w in backward], scale

    def _activate(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """A ``softplus`` or ``silu`` layer's output and slope at pre-activations ``z``."""
        sig = torch.sigmoid(z)
        if self.activation == "softplus":
            return nn.functional.softplus(z), sig
        return z * sig, sig * (1.0 + z * (1.0 - sig))  # silu and its derivative

    def _block_gradient(self, z: Tensor, forward: list[tuple[Tensor, Tensor]], backward: list[Tensor]) -> Tensor:
        """``d phi / d features`` ``(R, width)`` from the first layer's pre-activations ``z`` ``(R, H)``, for the
        activations other than ``tanh`` (:meth:`_tanh_blocks`)."""
        slopes = []
        for layer in range(len(forward) + 1):
            y, slope = self._activate(z)
            slopes.append(slope)
            if layer < len(forward):
                z = torch.addmm(forward[layer][0], y, forward[layer][1])
        grad = slopes.pop()
        for weight in backward[:-1]:
            grad = torch.mm(grad, weight).mul_(slopes.pop())
        return torch.mm(grad, backward[-1])

    @staticmethod
    def _tanh_blocks(base: Tensor, shift: Tensor, forward: list[tuple[Tensor, Tensor]], backward: list[Tensor],
                     grads: Tensor) -> None:
        """``d phi / d features`` for ``tanh`` (the folded form of :meth:`_folded_weights`) from the first
        layer's scaled pre-activations ``base + shift`` (points ``(..., P, H)``, fields ``(B, 1, H)``), block
        after block into ``grads`` ``(blocks, B * step, width)``, in buffers reused from one block to the next."""
        n_fields, width = shift.shape[0], base.shape[-1]
        rows = grads.shape[1]
        step = rows // n_fields
        hidden = [base.new_empty(rows, w) for w in [width] + [weight.shape[1] for _, weight in forward]]
        tmp = [base.new_empty(rows, weight.shape[1]) for weight in backward[:-1]]
        # sigmoid(base + shift) = 1 / (1 + exp(-base) exp(-shift)): two cheap passes instead of a sigmoid,
        # while the exponentials and their products stay normal float32 numbers.
        separable = float(torch.maximum(base.abs().amax(), shift.abs().amax())) < 40.0
        if separable:
            e_base, e_shift, one = torch.exp(-base), torch.exp(-shift), base.new_ones(())
        first = hidden[0].view(n_fields, step, width)
        for k in range(grads.shape[0]):
            block = slice(k * step, (k + 1) * step)
            if separable:
                torch.addcmul(one, e_base[..., block, :], e_shift, out=first).reciprocal_()
            else:
                torch.add(base[..., block, :], shift, out=first).sigmoid_()
            for layer, (bias, weight) in enumerate(forward):
                torch.addmm(bias, hidden[layer], weight, out=hidden[layer + 1]).sigmoid_()
                hidden[layer].addcmul_(hidden[layer], hidden[layer], value=-1.0)  # slope / 4: s - s^2
            grad = hidden[-1].addcmul_(hidden[-1], hidden[-1], value=-1.0)
            for j, weight in enumerate(backward[:-1]):
                grad = hidden[-2 - j].mul_(torch.mm(grad, weight, out=tmp[j]))
            torch.mm(grad, backward[-1], out=grads[k])

    def grad_potential(self, code: Tensor, xi: Tensor, block_rows: int = 2048) -> Tensor:
        """``grad phi`` ``(B, P, 2)`` at points ``xi`` (``(P, 2)`` shared by the fields, or ``(B, P, 2)``) for
        codes ``(B, latent)``, without autograd: the inference path of the mover.

        The MLP's input derivative written out: a forward sweep keeps each layer's activation slope, a
        backward sweep multiplies them by the weights, and the derivatives of the Fourier features close
        it. The code's share of the first layer is computed once per field and the features' once per
        point; the points go through in equal blocks of about ``block_rows`` rows (fields x points), so
        that the hidden values stay in cache. Equal to ``autograd.grad(potential(code, xi).sum(), xi)`` up
        to float32 round-off; not differentiable (training differentiates :meth:`potential`).
        """
        if code.ndim != 2 or xi.shape[-1:] != (2,) or xi.ndim not in (2, 3) or \
                (xi.ndim == 3 and xi.shape[0] != code.shape[0]):
            raise ShapeError("DMMNet grad_potential code, points", "(B, latent) and (P, 2) or (B, P, 2)",
                             (tuple(code.shape), tuple(xi.shape)))
        rows = check_positive_int("DMMNet grad_potential block_rows", block_rows)
        with torch.no_grad():
            xi = xi.to(code.dtype)
            forward, backward, scale = self._folded_weights()
            base = scale * self.point_in(self.features(xi))  # (..., P, H)
            shift = (scale * self.code_in(code))[:, None, :]  # (B, 1, H)
            slopes, axes = self.feature_slopes(xi)
            n_fields, n_points, width = code.shape[0], xi.shape[-2], backward[-1].shape[1]
            n_blocks = -(-n_points // max(1, rows // max(1, n_fields)))
            step = -(-n_points // max(1, n_blocks))  # points per block; the last block is padded
            pad = n_blocks * step - n_points
            base, slopes = (nn.functional.pad(t, (0, 0, 0, pad)) for t in (base, slopes))
            grads = base.new_empty(n_blocks, n_fields * step, width)
            if self.activation == "tanh":
                self._tanh_blocks(base, shift, forward, backward, grads)
            else:
                for k in range(n_blocks):
                    z = (base[..., k * step:(k + 1) * step, :] + shift).reshape(-1, base.shape[-1])
                    grads[k] = self._block_gradient(z, forward, backward)
            slopes = slopes.unflatten(-2, (n_blocks, step))  # (n, step, F) or (B, n, step, F)
            slopes = slopes[:, None] if slopes.ndim == 3 else slopes.transpose(0, 1)
            grad = grads.view(n_blocks, n_fields, step, width)[..., :axes.shape[0]] * slopes
            grad = (grad @ axes).transpose(0, 1).reshape(n_fields, -1, 2)
        return grad[:, :n_points].contiguous()
