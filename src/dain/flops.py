"""Cost accounting: the one place that counts a model's FLOPs, parameters, bits and active agents.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, convolutions, attention kernels; CPU attention
and ``torch.cdist`` through formulas added here) on the path that actually runs, with two things made explicit rather
than left to chance:

* the fused ``nn.TransformerEncoder``/``nn.MultiheadAttention`` inference fast path is switched off while counting
  (``torch.backends.mha.set_fastpath_enabled(False)``): it runs as one kernel the counter does not see, and it is
  taken exactly when grad is off, so without this a count under ``torch.no_grad()`` would be 0;
* recurrent layers (``nn.GRU``/``nn.LSTM``/``nn.RNN``) have no counter entries (a fused cuDNN call counts 0), so a
  forward hook replaces whatever the counter saw inside them by the standard gate formula (:func:`rnn_flops`).

Element-wise ops, gathers and scatters count as 0, so for DAIN the count reflects the agents actually computed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from dain.data.spec import MultimodalDataset, make_batch

# matrices per cell: input and hidden maps of each gate
RNN_GATES = {"GRU": 3, "LSTM": 4, "RNN_TANH": 1, "RNN_RELU": 1}


def _sdpa_flops(q_shape: tuple, k_shape: tuple, v_shape: tuple, *args: Any, out_shape: Any = None, **kw: Any) -> int:
    """Scaled dot-product attention: the counter's own formula (scores and weighted values)."""
    return sdpa_flop_count(q_shape, k_shape, v_shape)


def _cdist_flops(x1_shape: tuple, x2_shape: tuple, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """``torch.cdist`` of [..., P, M] against [..., R, M]: a difference, a square and an add per pair and feature."""
    batch = int(np.prod(x1_shape[:-2])) if len(x1_shape) > 2 else 1
    return 3 * batch * int(x1_shape[-2]) * int(x2_shape[-2]) * int(x1_shape[-1])


# ops the counter has no formula for: CPU attention runs as its own flash kernel (the counter knows only the CUDA
# ones), and the Laplace router's distances as cdist; without these both would count 0
_EXTRA_FORMULAS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops,
    torch.ops.aten._cdist_forward: _cdist_flops,
}


def batch_size_of(batch: dict) -> int:
    """Number of samples in a model batch."""
    return int(batch["mask"].shape[0])


def rnn_flops(rnn: nn.RNNBase, tokens: int) -> float:
    """Multiply-add FLOPs (2 per MAC) of ``rnn`` over ``tokens`` (batch x time) input steps: per layer and direction
    ``gates * 2 * hidden * (input + recurrent)`` per step, plus LSTM's projection ``2 * hidden * proj_size``.
    Biases and element-wise gate arithmetic count 0, as in the counter."""
    gates = RNN_GATES[rnn.mode]
    dirs = 2 if rnn.bidirectional else 1
    proj = getattr(rnn, "proj_size", 0)
    out = proj or rnn.hidden_size
    per_step = 0
    for layer in range(rnn.num_layers):
        inp = rnn.input_size if layer == 0 else out * dirs
        per_step += dirs * (gates * 2 * rnn.hidden_size * (inp + out) + (2 * rnn.hidden_size * proj if proj else 0))
    return float(per_step * tokens)


def _rnn_tokens(rnn: nn.RNNBase, x: Any) -> int:
    if isinstance(x, nn.utils.rnn.PackedSequence):
        return int(x.data.shape[0])
    return int(x.numel() // rnn.input_size)


@contextmanager
def _fastpath_off() -> Iterator[None]:
    was = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(was)


def total_flops(module: nn.Module, fn: Callable[[], Any]) -> float:
    """Total FLOPs of calling ``fn()`` (which runs ``module`` or parts of it), whatever the grad mode.

    The MHA fast path is disabled while counting and every RNN inside ``module`` is counted by :func:`rnn_flops`
    (see the module docstring)."""
    rnns = [m for m in module.modules() if isinstance(m, nn.RNNBase)]
    counter = FlopCounterMode(display=False, custom_mapping=_EXTRA_FORMULAS)
    seen: dict[int, float] = {}
    correction = [0.0]

    def pre(m: nn.Module, args: tuple) -> None:
        seen[id(m)] = float(counter.get_total_flops())

    def post(m: nn.Module, args: tuple, out: Any) -> None:
        inside = float(counter.get_total_flops()) - seen.pop(id(m))
        correction[0] += rnn_flops(m, _rnn_tokens(m, args[0])) - inside

    handles = [h for r in rnns for h in (r.register_forward_pre_hook(pre), r.register_forward_hook(post))]
    try:
        with _fastpath_off(), counter:
            fn()
    finally:
        for h in handles:
            h.remove()
    return float(counter.get_total_flops()) + correction[0]


def count_flops(model: nn.Module, batch: dict, forward: Callable[[dict], Any] | None = None) -> float:
    """FLOPs per sample of one forward pass in eval mode (any registered model; backward is not run).

    ``forward`` (default ``model``) is called with ``batch``; the model's train/eval mode is restored
    afterwards."""
    was_training = model.training
    model.eval()
    fn = forward if forward is not None else model
    try:
        flops = total_flops(model, lambda: fn(batch))
    finally:
        model.train(was_training)
    return flops / max(batch_size_of(batch), 1)


def flops_report(model: nn.Module, batch: dict) -> dict[str, float]:
    """``{"flops_per_sample": ..., "flops_per_sample_dense": ...}``; the dense entry only for models that
    implement ``flops_per_sample(batch, dense=...)`` (sparse agent models), else equal to the plain count."""
    if hasattr(model, "flops_per_sample"):
        return {
            "flops_per_sample": float(model.flops_per_sample(batch, dense=False)),
            "flops_per_sample_dense": float(model.flops_per_sample(batch, dense=True)),
        }
    f = count_flops(model, batch)
    return {"flops_per_sample": f, "flops_per_sample_dense": f}


def model_cost(model: nn.Module, data: MultimodalDataset, stats: dict[str, float]) -> dict[str, Any]:
    """A model's cost record (metrics.json "efficiency", ``dain bench``): parameters, FLOPs per sample on test rows
    (and, for agent models, the dense count), active agents, bits per sample and the other routing ``stats``.

    Routed models spend per sample what their routing decides, so they are counted on 512 test rows (others 64).
    Tree models report their size instead of parameters/FLOPs. A FLOP-counting failure is recorded, not raised."""
    routed = hasattr(model, "flops_per_sample")
    rows = np.asarray(data.splits["test"][: 512 if routed else 64], dtype=np.int64)
    batch = make_batch(data, rows)
    model.eval()
    if getattr(model, "fit_direct_model", False):  # trees: no parameters or FLOPs in the neural sense
        return {"params": None, "flops_per_sample": None, **getattr(model, "size_info", dict)()}  # trees: comparisons
    eff: dict[str, Any] = {"params": int(sum(p.numel() for p in model.parameters()))}
    try:
        rep = flops_report(model, batch)
        eff["flops_per_sample"] = rep["flops_per_sample"]
        if routed:
            eff["flops_per_sample_dense"] = rep["flops_per_sample_dense"]
    except Exception as e:  # FLOP counting must never lose a finished run
        eff["flops_per_sample"] = None
        eff["flops_error"] = str(e)
    if "active_agents" in stats:
        eff["active_agents_mean"] = stats["active_agents"]
    if hasattr(model, "num_agents"):
        eff["num_agents"] = int(model.num_agents)
    if "comm_bits" in stats:
        eff["comm_bits_per_sample"] = stats["comm_bits"]
    for k, v in stats.items():
        if k not in ("active_agents", "comm_bits"):
            eff[k] = v
    return eff
