"""Training harness (Lightning) and evaluation."""

from dain.training.runner import EvalResult, build_from_config, evaluate, fit_run, load_run

__all__ = ["EvalResult", "build_from_config", "evaluate", "fit_run", "load_run"]
