"""How far mfeat's TMC split can go: the test rows every model gets wrong, and what their nearest training rows are.

    python benchmarks/mfeat_ceiling.py [RUN_DIR ...]

Fits an L2 logistic regression on the six views concatenated and standardised (train statistics; LBFGS; the L2
weight chosen on validation), prints its validation / test accuracy and test errors, then, for every test row that
the logistic regression or a given run (``dain fit`` / ``dain compare`` run directories on mfeat TMC) gets wrong,
its label, the logistic regression's two most likely classes and the labels of its 5 nearest training rows in each
view (Euclidean, standardised view). One JSON line per part on stdout (docs/results.md, issue 12)."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from dain.data import load_dataset
from dain.data.spec import make_batch


def views(data, split: str) -> tuple[list[torch.Tensor], torch.Tensor, np.ndarray]:  # noqa: ANN001
    rows = np.asarray(data.splits[split])
    batch = make_batch(data, rows)
    return [batch["inputs"][m].double() for m in data.spec.modality_names], batch["target"], rows


def logistic_regression(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int) -> torch.nn.Linear:
    lin = torch.nn.Linear(x.shape[1], classes).double()
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(x), y) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lin


def run_errors(run: str, test_rows: np.ndarray) -> list[int]:
    from dain.training.runner import load_run

    _, data, model = load_run(run)
    model.eval()
    batch = make_batch(data, test_rows)
    with torch.no_grad():
        pred = model(batch).logits.argmax(-1)
    return [int(r) for r in test_rows[(pred != batch["target"]).numpy()]]


def main(runs: list[str]) -> None:
    torch.manual_seed(0)
    data = load_dataset("mfeat", protocol="tmc")
    (tr, ytr, _), (va, yva, _), (te, yte, te_rows) = (views(data, s) for s in ("train", "val", "test"))
    cat = [torch.cat(v, 1) for v in (tr, va, te)]
    mu, sd = cat[0].mean(0), cat[0].std(0).clamp_min(1e-6)
    xtr, xva, xte = ((c - mu) / sd for c in cat)
    best = None
    for l2 in (1e-4, 1e-3, 1e-2, 1e-1):
        lin = logistic_regression(xtr, ytr, l2, data.spec.num_outputs)
        with torch.no_grad():
            val = float((lin(xva).argmax(1) == yva).double().mean())
        if best is None or val > best[0]:
            best = (val, l2, lin)
    val, l2, lin = best
    with torch.no_grad():
        prob = torch.softmax(lin(xte), 1)
    wrong = [int(r) for r in te_rows[(prob.argmax(1) != yte).numpy()]]
    print(
        json.dumps(
            {
                "model": "logistic regression",
                "l2": l2,
                "val_acc": round(100 * val, 2),
                "test_acc": round(100 * (1 - len(wrong) / len(te_rows)), 2),
                "test_errors": wrong,
            }
        )
    )
    errors = {"logistic regression": wrong}
    for run in runs:
        errors[run] = run_errors(run, te_rows)
        print(json.dumps({"run": run, "test_errors": errors[run]}))
    # each view standardised with its training statistics, once
    stats = [(a.mean(0), a.std(0).clamp_min(1e-6)) for a in tr]
    tr_std = [(a - m) / s for a, (m, s) in zip(tr, stats)]
    te_std = [(q - m) / s for q, (m, s) in zip(te, stats)]
    for row in sorted({r for e in errors.values() for r in e}):
        i = int(np.nonzero(te_rows == row)[0][0])
        neighbours = {}
        for name, a, q in zip(data.spec.modality_names, tr_std, te_std):
            d = torch.cdist(q[i].unsqueeze(0), a)[0]
            neighbours[name] = ytr[d.topk(5, largest=False).indices].tolist()
        top = prob[i].topk(2)
        print(
            json.dumps(
                {
                    "test_row": row,
                    "label": int(yte[i]),
                    "wrong_in": [n for n, e in errors.items() if row in e],
                    "lr_top2": [[int(c), round(float(p), 3)] for p, c in zip(top.values, top.indices)],
                    "nearest_train_labels_per_view": neighbours,
                }
            )
        )


if __name__ == "__main__":
    main(sys.argv[1:])
