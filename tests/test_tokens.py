"""The one token/mask helper: attention mask vs real mask, modality ids, token cap, per-sample fill."""

from __future__ import annotations

import torch

from dain.encoders import ModalityEncoders
from dain.encoders.base import modality_tokens
from tests.conftest import tiny_batch, tiny_spec


def test_modality_tokens_masks_and_ids() -> None:
    torch.manual_seed(0)
    spec = tiny_spec("sequence")  # s1 [6, 3], s2 [6, 2]
    enc_mod = ModalityEncoders(spec, 8).eval()
    batch = tiny_batch(spec, n=4, missing=True)  # sample 0 lacks s1, sample 1 lacks s2; sample 2 pads 2 steps
    enc = enc_mod(batch)
    emb = torch.randn(2, 8)
    tk = modality_tokens(enc, batch["mask"], spec.modality_names, emb, max_tokens=3)
    assert tk.tokens.shape == (4, 6, 8) and tk.ids.tolist() == [0, 0, 0, 1, 1, 1]
    assert tk.attend[0, :3].all() and not tk.real[0, :3].any()  # the missing embedding: attended, not real
    assert tk.real[0, 3:].all() and torch.equal(tk.real[3], tk.attend[3])
    assert tk.attend[2, :3].tolist() == [True, True, False]  # steps pooled 2 by 2: the last pair is padding
    torch.testing.assert_close(tk.tokens[0, 0], enc_mod.missing[0].detach() + emb[0])
    both_missing = batch["mask"].clone()
    both_missing[3] = False
    tk2 = modality_tokens(enc, both_missing, spec.modality_names)
    keep = tk2.real_or_attend()
    assert torch.equal(keep[3], tk2.attend[3]) and torch.equal(keep[:3], tk2.real[:3])


def test_modality_tokens_fill_replaces_absent_tokens() -> None:
    spec = tiny_spec("vector")
    enc = ModalityEncoders(spec, 4).eval()(tiny_batch(spec, n=3, missing=True))
    mask = torch.tensor([[False, True, True], [True, True, False], [True, True, True]])
    fill = torch.arange(3 * 3 * 4, dtype=torch.float32).view(3, 3, 4)
    tk = modality_tokens(enc, mask, spec.modality_names, fill=fill)
    assert torch.equal(tk.tokens[0, tk.ids == 0][0], fill[0, 0]) and torch.equal(
        tk.tokens[1, tk.ids == 2][0], fill[1, 2]
    )
    assert tk.attend.all() and torch.equal(tk.real, mask[:, tk.ids])


def test_key_padding_drops_a_mask_that_masks_nothing() -> None:
    """No padding: None (CPU attention then skips the masked-softmax kernel) and the same attention output."""
    from dain.encoders.base import key_padding

    pad = torch.zeros(3, 5, dtype=torch.bool)
    assert key_padding(pad) is None
    pad[1, 4] = True
    assert key_padding(pad) is pad
    attn = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    x = torch.randn(3, 5, 8)
    nothing = torch.zeros(3, 5, dtype=torch.bool)
    with torch.no_grad():
        a = attn(x, x, x, key_padding_mask=nothing, need_weights=False)[0]
        b = attn(x, x, x, key_padding_mask=key_padding(nothing), need_weights=False)[0]
    assert torch.allclose(a, b, atol=1e-6)
