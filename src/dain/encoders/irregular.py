"""Time-aware encoder for irregularly sampled series on a grid (GRU-D style, Che et al., Sci. Rep. 2018).

Channel convention: when a sequence modality has ``D = 3V`` features they are read as
``[values (V) | observation mask (V) | time since last observation (V)]`` (what ``physionet2012``
produces; values are z-scored so 0 = the population mean). Otherwise all ``D`` channels are values, every
value counts as observed at steps where the step mask is True, and the time gap is derived from the step
mask (in units of the sequence length).
"""

from __future__ import annotations

import torch
from torch import nn

from dain.data.spec import ModalitySpec
from dain.encoders.base import EncodedModality, LazyTokens
from dain.registry import ENCODERS


def split_channels(x: torch.Tensor, steps: torch.Tensor | None, triplet: bool) -> tuple[torch.Tensor, ...]:
    """Return (values, mask, delta), each ``[B, T, V]``, following the module's channel convention."""
    B, T, D = x.shape
    step = torch.ones(B, T, dtype=torch.bool, device=x.device) if steps is None else steps.to(torch.bool)
    if triplet:
        v = D // 3
        values, mask, delta = x[..., :v], x[..., v : 2 * v], x[..., 2 * v :]
        return values, mask.clamp(0, 1) * step.unsqueeze(-1).to(x.dtype), delta
    mask = step.unsqueeze(-1).to(x.dtype).expand(B, T, D)
    t = torch.arange(T, device=x.device).view(1, T)
    last = torch.where(step, t, torch.full_like(t, -1)).cummax(dim=1).values
    gap = torch.where(last >= 0, t - last, t + 1).to(x.dtype) / T
    return x, mask, gap.unsqueeze(-1).expand(B, T, D)


def state_gaps(delta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GRU-D's delta [B, T, V] from this module's (time since the last observation, 0 where observed): where a
    variable is observed, the time since its previous observation, i.e. the delta one step earlier plus one grid
    step (1/T, the unit of ``physionet2012``'s delta and of the derived gap; before step 0 the delta is 0, so a
    first observation at step t reads (t + 1)/T, the time since admission); elsewhere the delta as given."""
    T = delta.shape[1]
    before = torch.cat([delta.new_zeros(delta.shape[0], 1, delta.shape[2]), delta[:, :-1]], 1)
    return torch.where(mask > 0, before + 1.0 / T, delta)


@ENCODERS.register("time_aware")
class TimeAwareEncoder(nn.Module):
    """GRU-D: learned exponential decay of the input toward its mean and of the hidden state, by time gap.

    At each step: ``x_hat = m*x + (1-m)*(g_x*x_last + (1-g_x)*mean)`` with
    ``g_x = exp(-relu(w_x*delta + b_x))``; ``h = g_h * h`` with ``g_h = exp(-relu(W_h delta + b_h))``;
    ``h' = GRUCell([x_hat, m], h)``. Steps whose step mask is False leave the state unchanged, so the cell runs only on
    each row's observed steps (packed, as in a PackedSequence: on P12 the labs are observed at 22% of the hours). The
    imputation does not depend on the state, so it runs for all steps at once; only the (fused) GRU cell loops.
    Tokens are the per-step states; pooled is the state at the last observed step.

    The state's decay reads GRU-D's delta: for a variable observed at the step, the time since its *previous*
    observation (``state_gaps``; the delta channel itself is 0 there), otherwise the time since its last one.
    """

    kinds = ("sequence",)

    def __init__(self, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> None:
        super().__init__()
        d = modality.shape[1]
        self.triplet = d % 3 == 0 and d >= 3
        v = d // 3 if self.triplet else d
        self.n_vars = v
        self.w_x = nn.Parameter(torch.full((v,), 0.1))
        self.b_x = nn.Parameter(torch.zeros(v))
        self.x_mean = nn.Parameter(torch.zeros(v))
        self.decay_h = nn.Linear(v, hidden)
        self.cell = nn.GRUCell(2 * v, hidden)
        self.top = (
            nn.GRU(
                hidden,
                hidden,
                num_layers=layers - 1,
                batch_first=True,
                dropout=dropout if layers > 2 else 0.0,
            )
            if layers > 1
            else None
        )
        self.drop = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(hidden)
        self.hidden = hidden

    def forward(self, x: torch.Tensor, steps: torch.Tensor | None = None) -> EncodedModality:
        values, mask, delta = split_channels(x, steps, self.triplet)
        B, T, _ = values.shape
        step = torch.ones(B, T, dtype=torch.bool, device=x.device) if steps is None else steps.to(torch.bool)
        gx = torch.exp(-torch.relu(self.w_x * delta + self.b_x))  # [B, T, V]
        x_hat = self._imputed(values, mask, gx)
        inp = torch.cat([x_hat, mask], -1)  # [B, T, 2V]
        final, packed, order, count = self._recur(inp, state_gaps(delta, mask), step)
        if self.top is not None or (self.drop.training and self.drop.p > 0):
            # a stacked GRU reads every step; dropout is drawn per token: build the tokens, pool from them
            hs = self._tokens_from(packed, order, count, B, T)
            if self.top is not None:
                hs, _ = self.top(hs)
            tokens = self.norm(self.drop(hs))
            idx = torch.where(step, torch.arange(T, device=x.device).view(1, T), torch.zeros_like(count))
            return EncodedModality(tokens, step, tokens[torch.arange(B, device=x.device), idx.max(1).values])
        # the norm acts per token: the pooled (last observed) state alone, the tokens only if someone reads them
        return LazyTokens(lambda: self.norm(self._tokens_from(packed, order, count, B, T)), step, self.norm(final))

    def _recur(
        self, inp: torch.Tensor, delta: torch.Tensor, step: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The GRU cell over each row's *observed* steps only (an unobserved step leaves the state unchanged, so it
        needs no work). Rows are sorted by their number of observed steps and each row's observed steps packed to the
        front, as in a PackedSequence: packed step ``t`` runs the cell on the rows with more than ``t`` observed steps
        (a prefix). Returns the final state per row [B, H] (zeros without observations), the packed states (entry
        ``t``: [rows still running, H], sorted order), the sort order and the running count of observed steps [B, T].
        """
        B, T, _ = inp.shape
        count = step.to(torch.long).cumsum(1)  # observed steps up to and including t
        k = count[:, -1] if T else step.new_zeros(B, dtype=torch.long)
        order = torch.argsort(k, descending=True, stable=True)
        first = torch.argsort((~step.index_select(0, order)).to(torch.int8), dim=1, stable=True)  # observed first
        pos = first.unsqueeze(-1)
        inp = inp.index_select(0, order).gather(1, pos.expand(-1, -1, inp.shape[-1])).transpose(0, 1).contiguous()
        delta = delta.index_select(0, order).gather(1, pos.expand(-1, -1, delta.shape[-1])).transpose(0, 1)
        gh = torch.exp(-torch.relu(self.decay_h(delta)))  # [T, B, H]: the state's decay, on the packed steps
        running = (k.index_select(0, order).view(1, B) > torch.arange(T, device=inp.device).view(T, 1)).sum(1)
        h = inp.new_zeros(B, self.hidden)
        done, packed = [], []
        for t, n in enumerate(running.tolist()):  # one host sync
            if n == 0:
                break
            if n < h.shape[0]:  # the rows beyond n have no further observation: their state is final
                done.append(h[n:])
                h = h[:n]
            h = self.cell(inp[t, :n], gh[t, :n] * h)
            packed.append(h)
        final_sorted = torch.cat([h, *reversed(done)]) if done else h
        final = torch.empty_like(final_sorted).index_copy(0, order, final_sorted)
        return final, packed, order, count

    def _tokens_from(
        self, packed: list[torch.Tensor], order: torch.Tensor, count: torch.Tensor, B: int, T: int
    ) -> torch.Tensor:
        """Per-step states [B, T, H] from the packed ones: at step t a row holds the state after its ``count[t]``-th
        observation (zeros before the first)."""
        like = packed[0] if packed else order.new_zeros(0, dtype=self.cell.weight_hh.dtype)
        table = like.new_zeros(B, len(packed) + 1, self.hidden)  # slot 0: the zero state before any observation
        for t, h in enumerate(packed):
            table[: h.shape[0], t + 1] = h
        rank = torch.empty_like(order).index_copy(0, order, torch.arange(B, device=order.device))
        flat = table.view(B * (len(packed) + 1), self.hidden)
        idx = rank.view(B, 1) * (len(packed) + 1) + count  # [B, T]
        return flat.index_select(0, idx.reshape(-1)).view(B, T, self.hidden)

    def _imputed(self, values: torch.Tensor, mask: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
        """``x_hat`` for every step: observed values, elsewhere the last observation decayed toward the mean.
        ``x_last`` follows ``x_last = m * x + (1 - m) * x_last`` from ``x_mean``; for a 0/1 mask that is the last
        observed value (a forward fill, computed at once), for a fractional mask the recurrence is stepped."""
        B, T, V = values.shape
        binary = bool(((mask == 0) | (mask == 1)).all())
        if binary:
            t = torch.arange(T, device=values.device).view(1, T, 1)
            seen = torch.where(mask > 0, t, -1).cummax(dim=1).values  # [B, T, V]: step of the last observation
            filled = values.gather(1, seen.clamp_min(0))
            x_last = torch.where(seen >= 0, filled, self.x_mean.to(values.dtype))
        else:
            last, outs = self.x_mean.expand(B, -1), []
            for i in range(T):
                last = mask[:, i] * values[:, i] + (1 - mask[:, i]) * last
                outs.append(last)
            x_last = torch.stack(outs, 1)
        return mask * values + (1 - mask) * (gx * x_last + (1 - gx) * self.x_mean)
