"""Encoder interface and the multi-modality front-end used by every fusion model.

An encoder maps one modality ``[B, *shape]`` to tokens ``[B, L, d]`` (with a token mask ``[B, L]``) and a pooled
vector ``[B, d]``. :class:`ModalityEncoders` runs one encoder per modality and replaces the outputs of samples whose
modality is missing with a learned per-modality embedding (never silent zeros).

Token-mask convention (one for every model). ``EncodedModality.token_mask`` out of :class:`ModalityEncoders` is the
*attention mask*: True for a real step of an observed modality and for every token of an absent modality (which
carries the learned missing embedding, so attention and pooling see that embedding rather than nothing). The *real
mask* (:func:`real_mask`: attention mask and modality present) drops those missing-embedding tokens.
:func:`modality_tokens` builds the fusion models' token sequence with both masks and the modality id of each token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from dain.data.spec import DatasetSpec, ModalitySpec
from dain.registry import ENCODERS

DEFAULT_ENCODER = {"vector": "mlp", "sequence": "gru", "image": "cnn"}


@dataclass
class EncodedModality:
    tokens: torch.Tensor  # [B, L, d]
    token_mask: torch.Tensor  # [B, L] bool attention mask (see the module docstring)
    pooled: torch.Tensor  # [B, d]


class LazyTokens(EncodedModality):
    """An :class:`EncodedModality` whose tokens are computed on first access: a consumer that reads only ``pooled``
    (DAIN's agents) never pays for the per-token work (GRU-D's LayerNorm over every step: 7% of its forward)."""

    def __init__(self, make_tokens: Callable[[], torch.Tensor], token_mask: torch.Tensor, pooled: torch.Tensor) -> None:
        self._make, self._tokens = make_tokens, None
        self.token_mask, self.pooled = token_mask, pooled

    @property
    def tokens(self) -> torch.Tensor:  # type: ignore[override]
        if self._tokens is None:
            self._tokens = self._make()
        return self._tokens


def default_encoder_for(kind: str) -> str:
    return DEFAULT_ENCODER[kind]


def build_encoder(name: str, modality: ModalitySpec, hidden: int, dropout: float = 0.1, layers: int = 1) -> nn.Module:
    """Instantiate encoder ``name`` for ``modality`` with width ``hidden``."""
    cls = ENCODERS.get(name)
    kinds = getattr(cls, "kinds", None)
    if kinds is not None and modality.kind not in kinds:
        raise ValueError(f"encoder {name!r} handles {kinds}, not modality {modality.name!r} of kind {modality.kind}")
    return cls(modality, hidden=hidden, dropout=dropout, layers=layers)


def pool_tokens(t: torch.Tensor, m: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Average-pool tokens ``[B, L, d]`` (mask ``[B, L]``) in time to at most ``k`` tokens."""
    L = t.shape[1]
    if L <= k:
        return t, m
    step = -(-L // k)
    pad = step * k - L
    if pad:
        t = nn.functional.pad(t, (0, 0, 0, pad))
        m = nn.functional.pad(m, (0, pad), value=False)
    w = m.to(t.dtype).view(t.shape[0], k, step, 1)
    tp = (t.view(t.shape[0], k, step, -1) * w).sum(2) / w.sum(2).clamp_min(1.0)
    return tp, m.view(m.shape[0], k, step).any(-1)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens [B, L, d]`` over the positions where ``mask [B, L]`` is True (0 where there are none)."""
    w = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * w).sum(1) / w.sum(1).clamp_min(1.0)


def key_padding(pad: torch.Tensor) -> torch.Tensor | None:
    """``pad`` (True = not a key) as an attention ``key_padding_mask``, or None on CPU when it pads nothing: a mask
    that masks nothing still sends CPU attention through the slow masked-softmax kernel (about 40% of a BasicMotions
    forward of timemoe). On an accelerator the mask is kept as given (no host sync)."""
    if pad.device.type == "cpu" and not bool(pad.any()):
        return None
    return pad


def real_mask(token_mask: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Real mask from an attention mask ``[..., L]`` and modality presence ``[...]``: the missing-embedding tokens of
    absent modalities dropped."""
    return token_mask & present.to(torch.bool).unsqueeze(-1)


@dataclass
class ModalityTokens:
    """Every modality's tokens in one sequence (see the module docstring for the masks)."""

    tokens: torch.Tensor  # [B, L, d], each modality's tokens plus its modality embedding
    attend: torch.Tensor  # [B, L] attention mask: real tokens and absent modalities' missing-embedding tokens
    real: torch.Tensor  # [B, L] real mask: real tokens of observed modalities only
    ids: torch.Tensor  # [L] modality index of each position

    def real_or_attend(self) -> torch.Tensor:
        """The real mask; a sample with no real token keeps its attention mask (its missing embeddings)."""
        return torch.where(self.real.any(1, keepdim=True), self.real, self.attend)


def modality_tokens(
    enc: dict[str, EncodedModality],
    mask: torch.Tensor,
    names: list[str],
    modality_emb: torch.Tensor | None = None,
    max_tokens: int | None = None,
    fill: torch.Tensor | None = None,
) -> ModalityTokens:
    """Concatenate the modalities' tokens (time-pooled to ``max_tokens`` each by :func:`pool_tokens`), adding
    ``modality_emb[j]`` to modality j's. ``mask [B, M]``: modality present. ``fill [B, M, d]`` (optional) replaces
    the tokens of absent modalities (per-sample missing embeddings) before the modality embedding is added; with it,
    every position of an absent modality is attended (without it, time-pooling padding of a missing embedding is
    not)."""
    present = mask.to(torch.bool)
    toks, attend, real, ids = [], [], [], []
    for j, name in enumerate(names):
        t, m = enc[name].tokens, enc[name].token_mask
        if max_tokens is not None:
            t, m = pool_tokens(t, m, max_tokens)
        if fill is not None:  # every position of an absent modality then carries the fill, so all are attended
            p = present[:, j].view(-1, 1)
            t = torch.where(p.unsqueeze(-1), t, fill[:, j].unsqueeze(1).expand_as(t))
            m = m | ~p
        toks.append(t if modality_emb is None else t + modality_emb[j])
        attend.append(m)
        real.append(real_mask(m, present[:, j]))
        ids.append(torch.full((t.shape[1],), j, dtype=torch.long, device=t.device))
    return ModalityTokens(torch.cat(toks, 1), torch.cat(attend, 1), torch.cat(real, 1), torch.cat(ids))


def encode_rows(encoder: nn.Module, x: torch.Tensor, steps: torch.Tensor | None, rows: torch.Tensor) -> EncodedModality:
    """``encoder`` run on the ``rows`` of ``x`` (and of its step mask) only."""
    return encoder(x.index_select(0, rows), None if steps is None else steps.index_select(0, rows))


class ModalityEncoders(nn.Module):
    """One encoder per modality plus learned 'missing' embeddings.

    ``encoders`` maps modality name -> encoder name (defaults by kind). Output: dict name -> EncodedModality, where
    rows with ``mask[:, m] == False`` carry the learned missing embedding in both tokens and pooled vector.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        hidden: int,
        dropout: float = 0.1,
        layers: int = 1,
        encoders: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.hidden = hidden
        encoders = encoders or {}
        self.encoders = nn.ModuleDict(
            {
                m.name: build_encoder(encoders.get(m.name, default_encoder_for(m.kind)), m, hidden, dropout, layers)
                for m in spec.modalities
            }
        )
        self.missing = nn.Parameter(torch.randn(spec.num_modalities, hidden) * 0.02)

    def forward(self, batch: dict) -> dict[str, EncodedModality]:
        mask: torch.Tensor = batch["mask"]
        steps = batch.get("steps", {})
        out: dict[str, EncodedModality] = {}
        for j, m in enumerate(self.spec.modalities):
            x, st = batch["inputs"][m.name], steps.get(m.name)
            present = mask[:, j].to(torch.bool)
            if not bool(present.all()):
                # the encoder runs on the present rows only: a missing row's values (zeros, or NaN from a caller)
                # never reach it, its batch-norm statistics or its gradients; with no row present it reads zeros
                rows = torch.nonzero(present).squeeze(1)
                if rows.numel():
                    part = encode_rows(self.encoders[m.name], x, st, rows)
                else:
                    part = self.encoders[m.name](torch.zeros_like(x), None if st is None else torch.ones_like(st))
                    part = EncodedModality(part.tokens[:0], part.token_mask[:0], part.pooled[:0])
                B, dtype = x.shape[0], part.pooled.dtype
                miss = self.missing[j].to(dtype)
                pooled = miss.expand(B, -1).index_copy(0, rows, part.pooled)
                tokens = miss.expand(B, *part.tokens.shape[1:]).index_copy(0, rows, part.tokens)
                # a missing modality shows its learned embedding as real tokens
                tmask = part.token_mask.new_ones(B, part.token_mask.shape[1]).index_copy(0, rows, part.token_mask)
                enc = EncodedModality(tokens, tmask, pooled + 0.0 * self.missing[j].sum())
            else:
                enc = self.encoders[m.name](x, st)
                # keep the missing embedding in the graph so every parameter is reachable (zero contribution)
                enc = EncodedModality(enc.tokens, enc.token_mask, enc.pooled + 0.0 * self.missing[j].sum())
            out[m.name] = enc
        return out
