"""Ablation: the shape of DAIN's agents on a small training split. DAIN's agent is one hidden layer (input LayerNorm,
Linear, GELU, Dropout; linear head), the shape of late fusion's per-modality head. This script trains DAIN's defaults
through the harness with the agent replaced, in this process only (not a library option), by

* ``two_layer``: the first design's agent (Linear, GELU, Dropout, LayerNorm; head Linear, GELU, Dropout, Linear),
  the default until 2026-12-05;
* ``no_input_norm``: today's agent without its input LayerNorm;
* ``default``: the library's agent, unpatched (the same as ``dain fit``).

    python benchmarks/agent_shape_small.py FOLDER OUT {default|two_layer|no_input_norm} [--set key=value ...]

FOLDER: a bring-your-own folder of ``benchmarks/small_train_p12.py export``. One JSON line (validation and test AUROC)
on stdout (docs/results.md, issue 12, 2026-12-05)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

import dain.models.dain as dain_model
from dain.models.dain_parts.agents import Agent

MODES = ("default", "two_layer", "no_input_norm")


class TwoLayerAgent(nn.Module):
    """The first design's agent: trunk ``Linear -> GELU -> Dropout -> LayerNorm``, head ``Linear -> GELU -> Dropout
    -> Linear``."""

    def __init__(self, in_dim: int, width: int, num_outputs: int, dropout: float = 0.1, norm_input: bool = True):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(in_dim, width), nn.GELU(), nn.Dropout(dropout), nn.LayerNorm(width))
        self.head = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, num_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


def no_input_norm_agent(in_dim: int, width: int, num_outputs: int, dropout: float = 0.1, norm_input: bool = True):
    """Today's agent with its input LayerNorm left out."""
    return Agent(in_dim, width, num_outputs, dropout, norm_input=False)


def main() -> None:
    folder, out, mode, *sets = sys.argv[1:]
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {MODES}")
    if mode == "two_layer":
        dain_model.Agent = TwoLayerAgent
    elif mode == "no_input_norm":
        dain_model.Agent = no_input_norm_agent
    from dain.cli import main as cli

    args = ["fit", "--data", folder, "--model", "dain", "--threads", "1", "--no-progress", "--quiet", "--out", out]
    cli([*args, *sets])
    m = json.loads((Path(out) / "metrics.json").read_text())
    row = {"folder": Path(folder).name, "mode": mode, "sets": sets[1::2] if sets else []}
    row.update(val_auroc=m["val"]["auroc"], test_auroc=m["test"]["auroc"])
    print(json.dumps(row))


if __name__ == "__main__":
    main()
