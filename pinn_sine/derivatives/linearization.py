"""The least-squares objective linearised at the current parameters: the weighted
residual vector r and its Jacobian J as an operator (J v, J^T u, J J^T) that never
needs J itself.

The training loss of a least-squares problem is

    L(theta) = sum_k w_k (1 / n_k) sum_i sum_c r_{k,i,c}(theta)^2 = ||r(theta)||^2

with the stacked weighted residual r (N entries: row (k, c, i) is sqrt(w_k / n_k)
r_{k,i,c}). Every second-order stage works with r and J = dr/dtheta (N x p).

How J is held. Row i of a term reads point i of its point sets only, and every layer of
the network maps the rows of its stacked jet streams independently. For a linear layer
Z = H W^T + b, with H (S, n, C_in) the streams it maps and G = d(sum_i r_i)/dZ
(S, n, C_out) from one backward pass per residual column, row i of the layer's block of
J is the outer product sum

    dr_i / dW = sum_s G[s, i, :]^T H[s, i, :],     dr_i / db = G[0, i, :]

(the bias enters the value stream s = 0). Appending to H a column that is 1 on the value
stream and 0 on the derivative streams folds the bias into W: the layer's block of row i
is sum_s G[s, i]^T H~[s, i] with H~ = [H, e_0]. The linearization keeps G and H~ of
every layer, stacked over all N rows (a term whose rows read two point sets, such as a
periodic pair, carries the streams of both; rows that read fewer streams are padded
with zeros), and the row scales sqrt(w_k / n_k). Then

    (J v)_i   = scale_i sum_l sum_s G_l[s, i] . (H~_l[s, i] V_l^T)        (a forward pass)
    J^T u     = sum_l vec( sum_{s,i} scale_i u_i G_l[s, i]^T H~_l[s, i] )  (a backward pass)
    (J J^T)_ik = scale_i scale_k sum_l sum_{s,s'} (G_l[s, i] . G_l[s', k]) (H~_l[s, i] . H~_l[s', k])

for V_l the layer's block of v reshaped (C_out, C_in + 1). J v and J^T u cost what one
forward and one backward pass of the network on the N rows cost, and J J^T about
S^2 N^2 (C_out + C_in) per layer, against N^2 C_out C_in through J: the Jacobian of a
10k-parameter network on 16k residuals (1.3 GiB in float64) is never formed.

Trainable problem coefficients (:meth:`~pinn_sine.problems.Problem.coefficients`) are
the columns after the network's; their block of J is dense (N x k, by double backward,
one pass per coefficient) and enters every product.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..constraints import unconstrained
from .forward import forward_jet
from .jacobian import first_layer_streams, jacobian_parameters

#: elements a batched product may hold at once (the intermediate of J V or J^T U)
_CHUNK_ELEMENTS = 2**26
#: from this many columns on, J V and J^T U go through row blocks of J (one GEMM per
#: block) instead of the factors (whose cost grows with the streams per column)
_BLOCK_COLUMNS = 4
#: entries of one row block of a layer's columns of J
_BLOCK_ELEMENTS = 2**22


class _Cache:
    """Products a step computes once and several parts read (J, diag(J^T J), J J^T, a
    float32 copy): held by the linearization they belong to, so they go with it."""

    def cached(self, key: str, compute):
        """``compute()``, computed on the first call with ``key`` for this linearization."""
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]


@dataclass
class _Block:
    """Rows ``rows`` of J: column ``column`` of term ``term`` with its scale, and per point
    set it reads, the per-layer gradients G of the column's sum."""

    term: str
    column: int
    rows: slice
    scale: float
    parts: list  # [(point-set key, [G per layer])]


class Linearization(_Cache):
    """r and J of a problem's weighted residual at the current parameters, built by
    :func:`linearize` (module docstring for the algebra).

    Attributes:
        r: the weighted residual vector (N,), detached; ``||r||^2`` is the loss.
        slices: the rows of each loss term.
        params: the parameters in column order (the network's linear layers, weight
            row-major then bias, as :func:`~pinn_sine.derivatives.jacobian.jacobian_parameters`;
            then the problem's coefficients).
        n_rows, n_cols: N and p.
        kinds: each term's kind where the problem declares its terms (else "pde").
    """

    def __init__(self, r: Tensor, slices: dict[str, slice], params: list[Tensor], net_params: int,
                 blocks: list[_Block], traces: dict, inputs: dict, dirs: dict, layer_shapes: list,
                 coefficient_jacobian: Tensor | None, kinds: dict[str, str]):
        self.r, self.slices, self.params, self.kinds = r, slices, params, kinds
        self.n_rows = r.shape[0]
        self.n_net = net_params
        self.n_cols = net_params + (0 if coefficient_jacobian is None else coefficient_jacobian.shape[1])
        self._blocks, self._traces, self._inputs, self._dirs = blocks, traces, inputs, dirs
        self._shapes = layer_shapes  # [(C_out, C_in)] per layer
        self._Jc = coefficient_jacobian
        self._stack = None
        self.dtype, self.device = r.dtype, r.device
        self._evaluate: Callable[[], Tensor] | None = None  # r at the current parameters (linearize sets it)

    # ----- the residual elsewhere -------------------------------------------------------
    @torch.no_grad()
    def residual_at(self, step: Tensor) -> Tensor:
        """r(theta + step) (N,), on the same rows, weights and point sets as ``r`` (one
        forward jet pass, no Jacobian), the parameters put back afterwards: what a
        descent needs for a second-order correction along a step (the geodesic
        acceleration of :class:`~pinn_sine.optim.descents.Dense`)."""
        if step.ndim != 1 or step.shape[0] != self.n_cols:
            raise ValueError(f"Linearization.residual_at: expected a step ({self.n_cols},), got shape "
                             f"{tuple(step.shape)}.")
        if self._evaluate is None:
            raise ValueError("Linearization.residual_at: this linearization was not built by linearize() from a "
                             "problem and a network, so it cannot evaluate the residual elsewhere.")
        saved = [q.detach().clone() for q in self.params]
        try:
            col = 0
            for q in self.params:
                q.add_(step[col:col + q.numel()].view_as(q).to(q.dtype))
                col += q.numel()
            return self._evaluate().to(self.dtype)
        finally:
            for q, q0 in zip(self.params, saved):
                q.copy_(q0)

    # ----- the stacked factors ----------------------------------------------------------
    def _H(self, key: str, layer: int, n_streams: int) -> Tensor:
        H, Z = self._traces[key][layer]
        if H is None:
            H = first_layer_streams(self._inputs[key].to(Z.dtype), self._dirs[key], n_streams)
        return H.detach()

    def _stacked(self) -> list[tuple[Tensor, Tensor]]:
        """Per layer (G, H~), each (S_tot, N, C): every row's gradient and input streams,
        the bias column appended to H (1 on the value stream of each part), zero-padded."""
        if self._stack is not None:
            return self._stack
        N, out = self.n_rows, []
        for layer, (c_out, c_in) in enumerate(self._shapes):
            widths = []
            for block in self._blocks:
                widths.append(sum(parts[layer].shape[0] for _, parts in block.parts))
            S = max(widths, default=1) or 1
            G = self.r.new_zeros((S, N, c_out))
            H = self.r.new_zeros((S, N, c_in + 1))
            for block in self._blocks:
                s0 = 0
                for key, grads in block.parts:
                    g = grads[layer]
                    s = g.shape[0]
                    G[s0:s0 + s, block.rows] = g
                    H[s0:s0 + s, block.rows, :c_in] = self._H(key, layer, s)
                    H[s0, block.rows, c_in] = 1.0
                    s0 += s
            out.append((G, H))
        self._row_scale = self.r.new_zeros(N)
        for block in self._blocks:
            self._row_scale[block.rows] = block.scale
        self._stack = out
        return out

    def _split(self, v: Tensor) -> tuple[list[Tensor], Tensor | None]:
        """The network part of v (p,) or (p, k) as per-layer (k, C_out, C_in + 1) blocks
        [W | b], and the coefficient part."""
        V = v.reshape(v.shape[0], -1)
        blocks, col = [], 0
        for c_out, c_in in self._shapes:
            W = V[col:col + c_out * c_in].reshape(c_out, c_in, -1)
            b = V[col + c_out * c_in:col + c_out * c_in + c_out].reshape(c_out, 1, -1)
            blocks.append(torch.cat([W, b], 1).permute(2, 0, 1))
            col += c_out * (c_in + 1)
        return blocks, (V[col:] if self._Jc is not None else None)

    # ----- products -----------------------------------------------------------------------
    def mv(self, v: Tensor) -> Tensor:
        """J v for v (p,) -> (N,), or J V for V (p, k) -> (N, k)."""
        self._check_len(v, self.n_cols, "mv")
        matrix = v.ndim == 2
        blocks, vc = self._split(v)
        k = blocks[0].shape[0]
        out = self.r.new_zeros((self.n_rows, k))
        if k >= _BLOCK_COLUMNS:  # many columns (a sketch): through row blocks of J, one GEMM each
            for (G, H), W in zip(self._stacked(), blocks):
                Wf = W.reshape(k, -1)
                for rows, Jl in self._layer_row_blocks(G, H):
                    out[rows] += Jl @ Wf.T
            blocks = []
        for (G, H), W in zip(self._stacked() if blocks else [], blocks):
            S, N, c_out = G.shape
            Hf = H.reshape(S * N, -1)
            step = max(1, _CHUNK_ELEMENTS // max(S * N * c_out, 1))
            for a in range(0, k, step):
                Wk = W[a:a + step]  # (kk, C_out, C_in + 1)
                kk = Wk.shape[0]
                HW = (Hf @ Wk.permute(2, 0, 1).reshape(Hf.shape[1], kk * c_out)).view(S, N, kk, c_out)
                out[:, a:a + step] += (HW * G.unsqueeze(2)).sum(3).sum(0)
        out *= self._row_scale[:, None]
        if self._Jc is not None:
            out += self._Jc @ vc
        return out if matrix else out[:, 0]

    def rmv(self, u: Tensor) -> Tensor:
        """J^T u for u (N,) -> (p,), or J^T U for U (N, k) -> (p, k)."""
        self._check_len(u, self.n_rows, "rmv")
        matrix = u.ndim == 2
        U = u.reshape(self.n_rows, -1) * self._scale()[:, None]
        k = U.shape[1]
        pieces = []
        for G, H in self._stacked():
            S, N, c_out = G.shape
            c_in1 = H.shape[2]
            if k >= _BLOCK_COLUMNS:  # many columns: through row blocks of J
                acc = U.new_zeros((c_out * c_in1, k))
                for rows, Jl in self._layer_row_blocks(G, H, scaled=False):
                    acc += Jl.T @ U[rows]
                block = acc.T.reshape(k, c_out, c_in1)
                pieces.append(block[:, :, :-1].reshape(k, -1))
                pieces.append(block[:, :, -1])
                continue
            Hf = H.reshape(S * N, c_in1)
            step = max(1, _CHUNK_ELEMENTS // max(S * N * c_out, 1))
            cols = []
            for a in range(0, k, step):
                Uk = U[:, a:a + step]
                GU = (G.unsqueeze(-1) * Uk[None, :, None, :]).reshape(S * N, c_out * Uk.shape[1])
                cols.append((GU.T @ Hf).reshape(c_out, Uk.shape[1], c_in1).permute(1, 0, 2))
            block = torch.cat(cols, 0)  # (k, C_out, C_in + 1)
            pieces.append(block[:, :, :-1].reshape(k, -1))
            pieces.append(block[:, :, -1])
        if self._Jc is not None:
            pieces.append((self._Jc.T @ u.reshape(self.n_rows, -1)).T)
        out = torch.cat(pieces, 1).T
        return out if matrix else out[:, 0]

    def _layer_row_blocks(self, G: Tensor, H: Tensor, scaled: bool = False):
        """(rows, block) pairs covering one layer's columns of J (unscaled by the row
        scales unless ``scaled``), the columns in the augmented order (o, j) with the
        bias as j = C_in: row chunks of at most :data:`_BLOCK_ELEMENTS` entries."""
        S, N, c_out = G.shape
        width = c_out * H.shape[2]
        chunk = max(1, _BLOCK_ELEMENTS // max(width, 1))
        for a in range(0, N, chunk):
            rows = slice(a, min(N, a + chunk))
            Jl = torch.einsum("sio,sij->ioj", G[:, rows], H[:, rows]).reshape(-1, width)
            if scaled:
                Jl = Jl * self._row_scale[rows, None]
            yield rows, Jl

    def gram(self) -> Tensor:
        """J J^T (N x N), from the factors (never forming J)."""
        N = self.n_rows
        K = self.r.new_zeros((N, N))
        for G, H in self._stacked():
            S = G.shape[0]
            for s in range(S):
                for t in range(s, S):
                    M = (G[s] @ G[t].T) * (H[s] @ H[t].T)
                    if t == s:
                        K += M
                    else:
                        K += M
                        K += M.T
        scale = self._scale()
        K *= scale[:, None] * scale[None, :]
        if self._Jc is not None:
            K += self._Jc @ self._Jc.T
        return K

    def normal_diagonal(self) -> Tensor:
        """diag(J^T J) (p,): the squared column norms (the Jacobi preconditioner and
        ||J||_F^2), without J: for a layer,

            sum_i (sum_s G[s, i, o] H~[s, i, j])^2 = sum_{s, t} ((G_s * G_t)^T (H~_s * H~_t))[o, j]

        (S (S + 1) / 2 products of the cost of one J^T u)."""
        pieces = []
        scale2 = self._scale() ** 2
        for G, H in self._stacked():
            S = G.shape[0]
            acc = G.new_zeros((G.shape[2], H.shape[2]))
            for s in range(S):
                for t in range(s, S):
                    M = (G[s] * G[t] * scale2[:, None]).T @ (H[s] * H[t])
                    acc += M if t == s else 2 * M
            pieces.append(acc[:, :-1].reshape(-1))
            pieces.append(acc[:, -1])
        if self._Jc is not None:
            pieces.append((self._Jc * self._Jc).sum(0))
        return torch.cat(pieces)

    def submatrix(self, rows: Tensor | None = None, cols: Tensor | None = None) -> Tensor:
        """J[rows][:, cols] (index tensors; None: all), formed from the factors at the cost
        of the entries asked for (S n k multiply-adds for n rows and k columns): the
        sketched Gauss-Newton step's small matrix."""
        stacks = self._stacked()
        rsel = slice(None) if rows is None else rows
        scale = self._scale()[rsel]
        cols = torch.arange(self.n_cols, device=self.device) if cols is None else cols
        n = scale.shape[0]
        out = self.r.new_zeros((n, cols.shape[0]))
        start = 0
        for (G, H), (c_out, c_in) in zip(stacks, self._shapes):
            width = c_out * (c_in + 1)
            mask = (cols >= start) & (cols < start + width)
            if bool(mask.any()):
                t = cols[mask] - start
                weight = t < c_out * c_in
                o = torch.where(weight, t // c_in, t - c_out * c_in)
                j = torch.where(weight, t % c_in, torch.full_like(t, c_in))
                out[:, mask] = (G[:, rsel][:, :, o] * H[:, rsel][:, :, j]).sum(0)
            start += width
        out *= scale[:, None]
        if self._Jc is not None:
            mask = cols >= self.n_net
            if bool(mask.any()):
                out[:, mask] = self._Jc[rsel][:, cols[mask] - self.n_net]
        return out

    def materialize(self) -> Tensor:
        """J (N x p) itself, row blocks as the Jacobian code has always built them."""
        p = self.n_cols
        J = self.r.new_zeros((self.n_rows, p))
        for block in self._blocks:
            for key, grads in block.parts:
                _fill_rows(J[block.rows, :self.n_net], self._traces[key], grads, self._inputs[key],
                           self._dirs[key], block.scale, accumulate=len(block.parts) > 1)
        if self._Jc is not None:
            J[:, self.n_net:] = self._Jc
        return J

    # ----- helpers -------------------------------------------------------------------------
    def _scale(self) -> Tensor:
        self._stacked()
        return self._row_scale

    @staticmethod
    def _check_len(v: Tensor, n: int, what: str) -> None:
        if v.ndim not in (1, 2) or v.shape[0] != n:
            raise ValueError(f"Linearization.{what}: expected a vector ({n},) or a matrix ({n}, k), got shape "
                             f"{tuple(v.shape)}.")

    def astype(self, dtype: torch.dtype) -> "Linearization":
        """This linearization with every factor, r and the cached products in ``dtype``
        (a float32 copy for cheaper products in the early steps of a precision
        schedule; :class:`~pinn_sine.optim.descents.MixedPrecision`)."""
        if dtype == self.dtype:
            return self

        def cast(t):
            return t.to(dtype) if isinstance(t, Tensor) and t.is_floating_point() else t

        new = copy.copy(self)
        new.r, new.dtype, new._Jc = cast(self.r), dtype, cast(self._Jc)
        new._blocks = [_Block(b.term, b.column, b.rows, b.scale, [(k, [cast(g) for g in gs]) for k, gs in b.parts])
                       for b in self._blocks]
        new._traces = {k: [(cast(H), cast(Z)) for H, Z in trace] for k, trace in self._traces.items()}
        new._inputs = {k: cast(v) for k, v in self._inputs.items()}
        if self._stack is not None:
            new._stack = [(cast(G), cast(H)) for G, H in self._stack]
            new._row_scale = cast(self._row_scale)
        new._cache = {k: cast(v) for k, v in getattr(self, "_cache", {}).items() if isinstance(v, Tensor)}
        return new

    def memory(self) -> int:
        """Bytes the stacked factors take (what the matrix-free products keep)."""
        return sum(G.numel() + H.numel() for G, H in self._stacked()) * self.r.element_size()

    def sum_over_ranks(self, t: Tensor) -> Tensor:
        """``t``, a sum over this linearization's rows (r.Jd, ||J||_F^2, J^T J, ...),
        completed over the processes that hold the other rows: here, one process, ``t``
        itself (:class:`RankLinearization` sums over the ranks)."""
        return t


class RankLinearization(_Cache):
    """One process's rows of a linearization whose rows are split over the ranks of a
    ``torchrun`` run (data parallelism): each rank linearizes its own points, the rows
    of a single-process linearization on the union of the points.

    With equal local batches the run's loss is the mean of the ranks' local losses, so
    the local rows are built with the term weights divided by the number of ranks W
    (:func:`linearize_ranks`): r_q = r_local / sqrt(W), J_q = J_local / sqrt(W) on rank
    q, and then

        ||r||^2 = sum_q ||r_q||^2,   J^T u = sum_q J_q^T u_q,   J^T J = sum_q J_q^T J_q,

    the global loss and the products of the stacked r and J. Here J v (``mv``) and ``r``
    are this rank's rows; J^T u (``rmv``), diag(J^T J) (``normal_diagonal``) and
    :meth:`sum_over_ranks` are summed over the ranks (one all-reduce each; every rank
    must call them together), so every vector of the parameter space is the same on all
    ranks. J J^T and row samples span the ranks and are refused.

    Args:
        local: this rank's :class:`Linearization` (weights already divided by W).
    """

    def __init__(self, local: Linearization):
        self.local = local
        self.r, self.slices, self.params, self.kinds = local.r, local.slices, local.params, local.kinds
        self.n_rows, self.n_cols, self.n_net = local.n_rows, local.n_cols, local.n_net
        self.dtype, self.device = local.dtype, local.device

    def mv(self, v: Tensor) -> Tensor:
        """J v for this rank's rows (n_rows,), or (n_rows, k)."""
        return self.local.mv(v)

    def residual_at(self, step: Tensor) -> Tensor:
        """This rank's rows of r(theta + step) (:meth:`Linearization.residual_at`)."""
        return self.local.residual_at(step)

    def rmv(self, u: Tensor) -> Tensor:
        """J^T u (p,) or (p, k) of the whole (all-rank) J, for u this rank's entries."""
        return self.sum_over_ranks(self.local.rmv(u))

    def normal_diagonal(self) -> Tensor:
        """diag(J^T J) (p,) of the whole J."""
        return self.sum_over_ranks(self.local.normal_diagonal())

    def materialize(self) -> Tensor:
        """This rank's rows of J (n_rows x p)."""
        return self.local.materialize()

    def gram(self) -> Tensor:
        raise ValueError("RankLinearization.gram: J J^T couples the rows of every rank (N x N over all the points); "
                         "it is not formed under torchrun. Work in the parameter space (J^T J, J^T u).")

    def submatrix(self, rows: Tensor | None = None, cols: Tensor | None = None) -> Tensor:
        raise ValueError("RankLinearization.submatrix: a row sample of J would be drawn from each rank's rows "
                         "separately; it is not available under torchrun.")

    def memory(self) -> int:
        return self.local.memory()

    def astype(self, dtype: torch.dtype) -> "RankLinearization":
        """The same rows in ``dtype`` (:meth:`Linearization.astype`)."""
        return self if dtype == self.dtype else RankLinearization(self.local.astype(dtype))

    def sum_over_ranks(self, t: Tensor) -> Tensor:
        """The sum of ``t`` over the ranks (an all-reduce)."""
        from ..distributed import all_reduce_sum

        return all_reduce_sum(t)


def linearize_ranks(problem, net: nn.Module, batch: Mapping[str, Tensor],
                    weights: Mapping[str, float] | Callable[[list[str]], Mapping[str, float]],
                    world_size: int) -> RankLinearization:
    """This rank's :class:`RankLinearization` on its ``batch`` (every rank an equal
    share): :func:`linearize` with the weights divided by ``world_size``."""

    def shared(names: list[str]) -> dict[str, float]:
        w = weights(names) if callable(weights) else weights
        return {k: float(w.get(k, 1.0)) / world_size for k in names}

    return RankLinearization(linearize(problem, net, batch, shared))


def _fill_rows(out: Tensor, trace: list, grads, x: Tensor, dirs: tuple[int, ...], scale: float,
               accumulate: bool = False) -> None:
    """Write (or add) the per-point gradient rows (n, p) of one residual column, times
    ``scale``, into ``out`` from its layer traces."""
    col = 0
    for (H, Z), G in zip(trace, grads):
        H = first_layer_streams(x.to(Z.dtype), dirs, Z.shape[0]) if H is None else H.detach()
        n_out, n_in = Z.shape[2], H.shape[2]
        block = out[:, col:col + n_out * n_in].view(-1, n_out, n_in)
        rows = torch.einsum("sio,sij->ioj", G, H).mul_(scale)
        if accumulate:
            block.add_(rows)
        else:
            block.copy_(rows)
        col += n_out * n_in
        if accumulate:
            out[:, col:col + n_out] += G[0] * scale
        else:
            out[:, col:col + n_out] = G[0] * scale
        col += n_out


def fitted_parameters(problem, net: nn.Module) -> list[Tensor]:
    """The parameters a second-order stage fits, in the Jacobian's column order: the
    network's linear layers (:func:`~pinn_sine.derivatives.jacobian.jacobian_parameters`),
    then the problem's trainable coefficients."""
    return jacobian_parameters(net) + _coefficients(problem)


def _coefficients(problem) -> list[Tensor]:
    coeffs = problem.coefficients() if hasattr(problem, "coefficients") else {}
    out = []
    for name, c in coeffs.items():
        if not isinstance(c, Tensor) or not c.requires_grad or not c.is_floating_point():
            raise ValueError(f"{type(problem).__name__}.coefficients()[{name!r}] must be a floating-point tensor "
                             f"with requires_grad=True (a trainable coefficient), got "
                             f"{type(c).__name__ if not isinstance(c, Tensor) else c.dtype}.")
        out.append(c)
    return out


def linearize(problem, net: nn.Module, batch: Mapping[str, Tensor],
              weights: Mapping[str, float] | Callable[[list[str]], Mapping[str, float]]) -> Linearization:
    """The :class:`Linearization` of ``problem``'s weighted residual at ``net``'s
    parameters on ``batch``: one forward jet pass per point set, one backward pass per
    residual column (to the layer outputs only).

    Row (k, c, i) of r is sqrt(w_k / n_k) r_{k,i,c} over the problem's residuals (its
    :meth:`~pinn_sine.problems.Problem.terms` where declared), so that ||r||^2 is the
    training loss sum_k w_k L_k (``weights``: a dict, missing terms 1, or a function of
    the list of term names returning one). A term reads the point sets it declares
    (several aligned sets: row i reads point i of each); for a problem that writes
    ``residuals()`` itself, the sets each term reads are found from the backward passes.
    """
    net_params = jacobian_parameters(net)
    coeffs = _coefficients(problem)
    if not problem.has_residuals:
        problem.residuals({}, {})  # raises, saying what to implement
    declared = {t.name: t for t in problem.terms()} if getattr(problem, "has_terms", False) else {}
    batch = _cast_points(batch, net_params[0].dtype)
    traces: dict[str, list] = {}
    jets, dirs, inputs = {}, {}, {}
    for key, spec in problem.derivatives.items():
        if key in batch:
            traces[key] = []
            jets[key] = forward_jet(net, batch[key], problem.input_names, spec, trace=traces[key])
            dirs[key] = tuple(problem.input_names.index(n) for n in spec.directions())
            inputs[key] = batch[key]
    residuals = problem.residuals(jets, batch)
    if callable(weights):
        weights = weights(list(residuals))
    keys = list(traces)
    depth = len(unconstrained(net).linears)
    flat_Z = [Z for key in keys for _, Z in traces[key]]
    total = 0
    for term, r in residuals.items():
        if r.ndim != 2:
            raise ValueError(f"{type(problem).__name__}.residuals()[{term!r}] has shape {tuple(r.shape)}; "
                             "expected (n, c): one row per point.")
        total += r.shape[0] * r.shape[1]
    first = next(iter(residuals.values()))
    r_out = first.new_empty(total)
    Jc = first.new_zeros((total, sum(c.numel() for c in coeffs))) if coeffs else None
    blocks, slices, kinds, start = [], {}, {}, 0
    for term, r in residuals.items():
        scale = _row_scale(weights, term, r)
        n_rows = r.shape[0]
        kinds[term] = declared[term].kind if term in declared else "pde"
        for c in range(r.shape[1]):
            rows = slice(start + c * n_rows, start + (c + 1) * n_rows)
            r_out[rows] = r[:, c].detach() * scale
            targets = flat_Z + coeffs if coeffs else flat_Z
            grads = torch.autograd.grad(r[:, c].sum(), targets, retain_graph=True, allow_unused=True)
            used = [key for j, key in enumerate(keys) if any(g is not None for g in grads[j * depth:(j + 1) * depth])]
            if term in declared:
                stray = [k for k in used if k not in declared[term].sets]
                if stray:
                    raise ValueError(f"the residual term {term!r} reads the point sets {stray}, which its Term does "
                                     f"not declare (sets={declared[term].sets}); add them to its sets.")
                used = [k for k in declared[term].sets if k in used]
            parts = []
            for key in used:
                if batch[key].shape[0] != n_rows:
                    raise ValueError(f"the residual term {term!r} has {n_rows} rows but its point set {key!r} "
                                     f"has {batch[key].shape[0]} points; give one residual row per point "
                                     "(the sets of one term must be aligned, of equal size).")
                j = keys.index(key)
                Gs = [torch.zeros_like(traces[key][l][1]) if g is None else g.detach()
                      for l, g in enumerate(grads[j * depth:(j + 1) * depth])]
                parts.append((key, Gs))
            blocks.append(_Block(term, c, rows, scale, parts))
            if coeffs and any(g is not None for g in grads[len(flat_Z):]):
                Jc[rows] = _coefficient_rows(r[:, c], coeffs) * scale
        slices[term] = slice(start, start + n_rows * r.shape[1])
        start = slices[term].stop
    shapes = [(layer.weight.shape[0], layer.weight.shape[1]) for layer in unconstrained(net).linears]
    n_net = sum(q.numel() for q in net_params)
    lin = Linearization(r_out, slices, net_params + coeffs, n_net, blocks, traces, inputs, dirs, shapes, Jc, kinds)
    held = {term: float(weights.get(term, 1.0)) for term in residuals}
    lin._evaluate = lambda: residual_vector(problem, net, batch, held)
    return lin


def _cast_points(batch: Mapping[str, Tensor], dtype: torch.dtype) -> dict:
    """``batch`` with its floating-point tensors in ``dtype`` (points drawn in float32 for
    a float64 network: cast as the trainer does)."""
    return {k: (v.to(dtype) if isinstance(v, Tensor) and v.is_floating_point() and v.dtype != dtype else v)
            for k, v in batch.items()}


def _row_scale(weights: Mapping[str, float], term: str, r: Tensor) -> float:
    """sqrt(w_k / n_k), the scale of term k's rows (an empty set has no rows)."""
    return math.sqrt(float(weights.get(term, 1.0)) / max(r.shape[0], 1))


def residual_vector(problem, net: nn.Module, batch: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """The weighted residual r (N,) of :func:`linearize` alone (its rows in the same
    order, one forward jet pass per point set, no backward pass; the points cast to the
    network's dtype as there)."""
    batch = _cast_points(batch, jacobian_parameters(net)[0].dtype)
    jets = {key: forward_jet(net, batch[key], problem.input_names, spec)
            for key, spec in problem.derivatives.items() if key in batch}
    residuals = problem.residuals(jets, batch)
    rows = [r[:, c] * _row_scale(weights, term, r) for term, r in residuals.items() for c in range(r.shape[1])]
    return torch.cat([row.detach() for row in rows]) if rows else torch.zeros(0)


def _coefficient_rows(rc: Tensor, coeffs: list[Tensor]) -> Tensor:
    """d rc_i / d c_j (n, k) for the flattened coefficients, by double backward (one pass
    per coefficient entry: a few unknowns)."""
    u = torch.zeros_like(rc, requires_grad=True)
    g = torch.autograd.grad(rc, coeffs, grad_outputs=u, create_graph=True, allow_unused=True)
    flat = torch.cat([(torch.zeros_like(c) if gi is None else gi).reshape(-1) for gi, c in zip(g, coeffs)])
    cols = []
    for j in range(flat.shape[0]):
        if flat[j].requires_grad:
            (col,) = torch.autograd.grad(flat[j], u, retain_graph=True, allow_unused=True)
            cols.append(torch.zeros_like(rc) if col is None else col.detach())
        else:
            cols.append(torch.zeros_like(rc).detach())
    return torch.stack(cols, 1)
