"""The one FLOP counter: independent of grad mode (MHA fast path off) and explicit for recurrent layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dain.flops import count_flops, rnn_flops, total_flops
from dain.models import build_model
from tests.conftest import tiny_batch, tiny_spec


def test_transformer_encoder_flops_same_with_and_without_grad() -> None:
    layer = nn.TransformerEncoderLayer(16, 2, 32, 0.1, batch_first=True, norm_first=True)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(4, 10, 16)
    with_grad = total_flops(enc, lambda: enc(x))
    with torch.no_grad():
        no_grad = total_flops(enc, lambda: enc(x))
    with torch.inference_mode():
        inference = total_flops(enc, lambda: enc(x))
    assert with_grad > 0 and no_grad == with_grad and inference == with_grad
    assert torch.backends.mha.get_fastpath_enabled()  # restored after counting


def test_registered_transformer_model_flops_same_under_no_grad() -> None:
    spec = tiny_spec("sequence")
    model = build_model("transformer", spec, hidden=16)
    batch = tiny_batch(spec, n=8)
    with_grad = count_flops(model, batch)
    with torch.no_grad():
        assert count_flops(model, batch) == with_grad > 0


def test_gru_flops_equal_hand_formula() -> None:
    B, T, D, H = 4, 20, 3, 16
    gru = nn.GRU(D, H, batch_first=True)
    x = torch.randn(B, T, D)
    # 3 gates, each an input (D -> H) and a recurrent (H -> H) matmul, 2 FLOPs per multiply-add, per step
    hand = B * T * 3 * (2 * D * H + 2 * H * H)
    assert total_flops(gru, lambda: gru(x)) == hand
    with torch.no_grad():
        assert total_flops(gru, lambda: gru(x)) == hand


def test_lstm_and_packed_gru_flops() -> None:
    lstm = nn.LSTM(3, 16, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 3)
    layer0 = 2 * 4 * (2 * 3 * 16 + 2 * 16 * 16)  # two directions, 4 gates
    layer1 = 2 * 4 * (2 * 32 * 16 + 2 * 16 * 16)  # input: both directions' states
    assert total_flops(lstm, lambda: lstm(x)) == 2 * 5 * (layer0 + layer1)
    gru = nn.GRU(3, 8, batch_first=True)
    packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 2]), batch_first=True)
    assert total_flops(gru, lambda: gru(packed)) == pytest.approx(rnn_flops(gru, 7)) == 7 * 3 * (2 * 3 * 8 + 2 * 8 * 8)


def test_model_with_gru_encoder_counts_the_gru() -> None:
    spec = tiny_spec("sequence")  # s1 [6, 3], s2 [6, 2]: GRU encoders by default
    model = build_model("early_fusion", spec, hidden=8)
    batch = tiny_batch(spec, n=4)
    # per sample and modality: 6 steps (row 2 of 4: 4, its last two unobserved), input = hidden = 8
    gru = (4 * 6 - 2) / 4 * 3 * (2 * 8 * 8 + 2 * 8 * 8)
    proj = 6 * 2 * 3 * 8 + 6 * 2 * 2 * 8
    head = 2 * 16 * 8 + 2 * 8 * 3
    assert count_flops(model, batch) == 2 * gru + proj + head


def test_gru_encoder_skips_trailing_padding_and_keeps_every_observed_state() -> None:
    from dain.data.spec import ModalitySpec
    from dain.encoders.sequence import GRUEncoder

    torch.manual_seed(0)
    enc = GRUEncoder(ModalitySpec("s", "sequence", (7, 3)), hidden=8).eval()
    x = torch.randn(5, 7, 3)
    steps = torch.ones(5, 7, dtype=torch.bool)
    steps[0, 4:] = False  # trailing padding
    steps[1, 1:3] = False  # an inner gap, observed to the end: nothing skipped on this row
    steps[2, 2:] = False
    steps[2, 5] = True  # a gap, then trailing padding after step 5
    steps[3] = False  # no observed step at all
    with torch.no_grad():
        out = enc(x, steps)
        ref = enc.norm(enc.gru(torch.relu(enc.proj(x)))[0])  # every step of every row
    seen = steps.unsqueeze(-1)
    torch.testing.assert_close(out.tokens * seen, ref * seen)
    torch.testing.assert_close(out.pooled[[0, 1, 2, 4]], ((ref * seen).sum(1) / seen.sum(1).clamp_min(1))[[0, 1, 2, 4]])
    assert torch.equal(out.token_mask, steps) and torch.equal(out.pooled[3], torch.zeros(8))
    # FLOPs follow the steps that run: lengths 4, 7, 6, 1 (none observed: one step), 7
    per_step = 3 * (2 * 8 * 8 + 2 * 8 * 8)
    proj = 5 * 7 * 2 * 3 * 8
    assert total_flops(enc, lambda: enc(x, steps)) == proj + (4 + 7 + 6 + 1 + 7) * per_step
    # every row observed to the end: the plain GRU, no packing
    full = torch.ones(5, 7, dtype=torch.bool)
    assert total_flops(enc, lambda: enc(x, full)) == proj + 5 * 7 * per_step
    # gradients reach every parameter through the packed path
    enc.train()
    enc(x, steps).pooled.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_cpu_attention_and_cdist_are_counted() -> None:
    """On CPU attention runs as its own flash kernel and the Laplace router's distances as cdist; neither has a
    formula in torch's counter, so both are added: 4 * B * H * L * S * E for attention (scores and weighted values),
    3 per pair and feature for cdist."""
    q = torch.randn(4, 2, 100, 32)
    here = nn.Module()
    assert total_flops(here, lambda: nn.functional.scaled_dot_product_attention(q, q, q)) == 4 * 4 * 2 * 100 * 100 * 32
    mha = nn.MultiheadAttention(64, 4, batch_first=True)
    x = torch.randn(4, 100, 64)
    projections = 2 * 4 * 100 * 64 * 64 * 4  # q, k, v and out
    with torch.no_grad():
        assert total_flops(mha, lambda: mha(x, x, x, need_weights=False)) == projections + 4 * 4 * 100 * 100 * 64
    assert total_flops(here, lambda: torch.cdist(torch.randn(3, 10, 8), torch.randn(3, 5, 8))) == 3 * 3 * 10 * 5 * 8
