"""What a fit prints on stderr: one line per epoch off a terminal, a bar on one, nothing but errors with --quiet."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from dain.cli import main
from dain.training.progress import resolve_progress


def _fit(tmp_path: Path, *flags: str) -> list[str]:
    args = ["fit", "--data", "mfeat", "--model", "late_fusion", "--max-epochs", "3", "--set", "hidden=16"]
    return [*args, "--threads", "1", "--out", str(tmp_path), *flags]


def test_off_a_terminal_one_line_per_epoch(tmp_path, capsys) -> None:
    assert main(_fit(tmp_path / "r")) == 0  # capsys' stderr is not a terminal
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar redraws
    lines = err.strip().splitlines()
    assert lines[0] == "fit late_fusion on mfeat (seed 0)"
    epochs = lines[1:]
    assert len(epochs) == 3
    for i, line in enumerate(epochs, 1):
        assert line.startswith(f"epoch {i}/3  train loss ")
        assert "val acc " in line and "(best " in line and "elapsed " in line


def test_no_progress_still_reports_epochs_and_quiet_prints_nothing(tmp_path, capsys) -> None:
    assert main(_fit(tmp_path / "a", "--no-progress")) == 0
    assert sum(line.startswith("epoch ") for line in capsys.readouterr().err.splitlines()) == 3
    assert main(_fit(tmp_path / "b", "--quiet")) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith("test: acc=")


def test_every_output_has_the_same_mode(tmp_path, capsys) -> None:
    run = tmp_path / "m"
    assert main(_fit(run, "--quiet", "--max-epochs", "1")) == 0
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(run / "model.safetensors") == mode(run / "metrics.json") == mode(run / "routing.npz")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    "progress, stream, mode",
    [
        (True, _Tty(), "bar"),
        (True, io.StringIO(), "lines"),
        ("auto", io.StringIO(), "lines"),
        (False, _Tty(), "quiet"),
        ("lines", _Tty(), "lines"),
    ],
)
def test_resolve_progress(progress, stream, mode) -> None:
    assert resolve_progress(progress, stream) == mode


def test_resolve_progress_rejects_unknown_modes() -> None:
    with pytest.raises(ValueError, match="progress must be one of"):
        resolve_progress("loud")
