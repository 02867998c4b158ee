"""``fit --resume`` after a SIGKILL reproduces the uninterrupted run: same metrics, same complete log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from dain.cli import main
from tests.conftest import REPO

# runs `dain fit` and SIGKILLs itself when epoch 2 starts, i.e. once the epoch-1 checkpoint (last.ckpt) is on disk
KILLED_FIT = """
import os, signal, sys
import lightning as L

class Kill(L.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 2:
            os.kill(os.getpid(), signal.SIGKILL)

init = L.Trainer.__init__
L.Trainer.__init__ = lambda self, *a, callbacks=None, **kw: init(self, *a, callbacks=[*(callbacks or []), Kill()], **kw)
from dain.cli import main
main(sys.argv[1:])
"""

ARGS = ["fit", "--data", "mfeat", "--model", "dain", "--max-epochs", "4", "--set", "hidden=16", "--seed", "3"]
ARGS += ["--threads", "1", "--no-progress", "--json"]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path: Path, capsys) -> None:
    assert main([*ARGS, "--out", str(tmp_path / "whole")]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    killed = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_FIT, *ARGS, "--out", str(killed)], env=env, capture_output=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (killed / "metrics.json").exists()
    assert torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    capsys.readouterr()
    assert main([*ARGS, "--out", str(killed), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    resumed = json.loads((killed / "metrics.json").read_text())
    assert resumed["test"] == whole["test"] and resumed["val"] == whole["val"]  # bit for bit
    assert resumed["time"]["epochs"] == whole["time"]["epochs"] == 4
    rows = (killed / "logs" / "metrics.csv").read_text()
    assert rows == (tmp_path / "whole" / "logs" / "metrics.csv").read_text()  # every epoch, identical values
    assert sorted({r.split(",")[0] for r in rows.splitlines()[1:]}) == ["0", "1", "2", "3"]
