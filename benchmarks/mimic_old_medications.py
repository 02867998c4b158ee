"""MIMIC-IV demo with the medication names as the loader read them before 2026-12-07 (STOP and UNK as drugs, the
stopped drugs lost): a 20-split compare of one model on those features, to separate the feature fix from the day's
training fix (docs/results.md, 2026-12-07).

Usage: python benchmarks/mimic_old_medications.py MODEL OUT [more dain compare flags, e.g. --set tree_agent=never]"""

import sys

import pandas as pd

import dain.datasets.mimic4_demo as M
from dain.cli import main


def old(code: pd.Series) -> pd.Series:
    """The medication name as read before the fix."""
    parts = code.str.split("//")
    second, third = parts.str[1], parts.str[2]
    return second.where(second != "START", third).fillna("")


M._med_name = old
args = ["--seeds", "20", "--jobs", "1", "--threads", "1", "--quiet", "--no-frontier", *sys.argv[3:]]
sys.exit(main(["compare", "--data", "mimic4-demo", "--models", sys.argv[1], *args, "--out", sys.argv[2]]))
