"""Re-draw the issue-17 plots from their JSON (no re-estimation) and print H(Y) of the training labels."""

import json
import sys
from pathlib import Path

from dain.data.registry_api import load_dataset
from dain.interactions import _target_codes
from dain.interactions.plot import plot_interactions
from dain.interactions.routing import label_entropy_bits

here = Path(__file__).parent
for name, args in (
    ("p12", ("physionet2012", {"protocol": "raindrop", "split": 1, "summary": True})),
    ("basicmotions", ("basicmotions", {})),
):
    blob = json.loads((here / f"interactions_{name}.json").read_text())
    data = load_dataset(args[0], **args[1])
    h = label_entropy_bits(_target_codes(data, data.splits["train"]))
    title = f"{args[0]}: R/U/S on the train split\n({blob['seconds']:.0f} s, 1 thread; H(Y) = {h:.2f} bits)"
    plot_interactions(blob["results"], here / f"interactions_{name}.png", title=title)
    print(name, "H(Y) bits", round(h, 3), "seconds", round(blob["seconds"], 1), file=sys.stderr)
