"""``fit --resume`` after a SIGKILL reproduces the uninterrupted run: same metrics, same complete log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from dain.cli import main
from tests.conftest import NO_TREES, REPO, fit_mfeat

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
ARGS += ["--threads", "1", "--no-progress", "--json", *NO_TREES]


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


def _raise_max_epochs(run: Path, epochs: int) -> None:
    """What a user does to train a finished run further: raise max_epochs in its config.yaml, then fit --resume."""
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["train"]["max_epochs"] = epochs
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_resume_to_more_epochs_follows_the_longer_schedule_and_counts_all_fit_time(tmp_path: Path) -> None:
    whole = fit_mfeat(tmp_path / "whole", "late_fusion", epochs=3)
    run = tmp_path / "extended"
    fit_mfeat(run, "late_fusion", epochs=1)
    # the fit time the checkpoint holds, made large so that leaving it out of the resumed run's time shows
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    (key,) = [k for k in ckpt["callbacks"] if "ResumeState" in k]
    ckpt["callbacks"][key]["fit_seconds"] = 1000.0
    torch.save(ckpt, last)
    _raise_max_epochs(run, 3)
    resumed = fit_mfeat(run, "late_fusion", "--resume", epochs=3)
    # the cosine LR over 3 epochs, not the 1-epoch schedule the run started with: the same weights as uninterrupted
    a, b = (load_file(str(p / "model.safetensors")) for p in (tmp_path / "whole", run))
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed["test"] == pytest.approx(whole["test"])
    sched = torch.load(last, weights_only=True)["lr_schedulers"][0]
    assert sched["T_max"] == 3 and sched["_last_lr"] == pytest.approx(
        torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"][0]["_last_lr"]
    )
    t = resumed["time"]
    assert t["epochs"] == 3 and 1000 < t["fit_seconds"] < 1000 + 120
    assert t["seconds_per_epoch"] == pytest.approx(t["fit_seconds"] / 3, abs=1e-3)
