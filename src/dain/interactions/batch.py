"""BATCH: neural PID estimator for high-dimensional continuous sources (Liang et al., NeurIPS 2023).

1. Discriminators p̂(y|x1), p̂(y|x2), p̂(y|x1,x2) (MLPs, cross-entropy); p̂(y) from label frequencies.
2. Alignment MLPs f1, f2: x -> R^{|Y| x k} (standardised per label); on a batch of m samples the
unnormalised joint
   is A[a, b, y] = exp(<f1(x1_a)_y, f2(x2_b)_y> / sqrt k).
3. A differentiable Sinkhorn scaling projects A onto the batch marginals: rows sum to p̂(y|x1_a), columns to
   p̂(y|x2_b) (per label y), giving q in Δp on the batch.
4. f1, f2 minimise I_q(X2;Y|X1) on the batch (discriminators frozen) -- equivalently I_q(X1,X2;Y).
5. Read-out on a held-out part: I(Y;Xi) = E KL(p̂(y|xi) || p̂(y)), I_p(Y;X1,X2) from the joint discriminator,
   I_q = I(Y;X1) + I_q(X2;Y|X1); R = I1 + I2 - I_q, U1 = I_q - I2, U2 = I_q - I1, S = I_p - I_q (bits,
   clipped at 0).

The core also accepts a group id per sample (e.g. a time lag): groups are one-hot encoded and concatenated
to the
inputs of every network, batches never mix groups, and the read-out is per group. This is the shared
("multi-scale")
temporal variant: one set of networks for all lags.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from dain.interactions.exact import LN2, PIDResult


def _mlp(din: int, hidden: int, dout: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = din
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


def _sinkhorn(a: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, iters: int, atol: float) -> torch.Tensor:
    """Scale a[m, m, C] so that a.sum(1) = p1[m, C] (rows) and a.sum(0) = p2[m, C] (columns); rows exact."""
    q = a
    for i in range(iters):
        q = q / q.sum(0, keepdim=True).clamp_min(1e-30) * p2.unsqueeze(0)
        q = q / q.sum(1, keepdim=True).clamp_min(1e-30) * p1.unsqueeze(1)
        if i % 5 == 4:
            with torch.no_grad():
                if (q.sum(0) - p2).abs().max() < atol:
                    break
    return q


def _cond_mi(q: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    """Per-sample I_q(X2;Y|X1=x1_a) in nats from the projected batch joint q[a, b, y] (rows sum to p1[a,
    y])."""
    cond = q / q.sum(1, keepdim=True).clamp_min(1e-30)  # q(x2_b | x1_a, y)
    mix = (cond * p1.unsqueeze(1)).sum(2, keepdim=True)  # q(x2_b | x1_a)
    w = cond * p1.unsqueeze(1)
    return (w * (torch.log(cond.clamp_min(1e-30)) - torch.log(mix.clamp_min(1e-30)))).sum((1, 2))


class _Align(nn.Module):
    def __init__(self, d1: int, d2: int, hidden: int, k: int, n_classes: int, layers: int) -> None:
        super().__init__()
        self.k, self.c = k, n_classes
        self.f1 = _mlp(d1, hidden, k * n_classes, layers)
        self.f2 = _mlp(d2, hidden, k * n_classes, layers)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        e1 = self.f1(x1).view(-1, self.c, self.k)
        e2 = self.f2(x2).view(-1, self.c, self.k)
        e1 = (e1 - e1.mean(2, keepdim=True)) / (e1.var(2, keepdim=True) + 1e-8).sqrt()
        e2 = (e2 - e2.mean(2, keepdim=True)) / (e2.var(2, keepdim=True) + 1e-8).sqrt()
        return torch.exp(torch.einsum("ayk,byk->aby", e1, e2) / math.sqrt(self.k))


def _group_batches(groups: np.ndarray, n_groups: int, bs: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches (index arrays) that never mix groups; tiny trailing batches are merged."""
    out: list[np.ndarray] = []
    for g in range(n_groups):
        idx = rng.permutation(np.flatnonzero(groups == g))
        if len(idx) == 0:
            continue
        chunks = [idx[i : i + bs] for i in range(0, len(idx), bs)]
        if len(chunks) > 1 and len(chunks[-1]) < bs // 2:
            last = chunks.pop()  # pop first: the merge target is then chunks[-1]
            chunks[-1] = np.concatenate([chunks[-1], last])
        out += chunks
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _capped(batches: list[np.ndarray], steps_left: int | None) -> list[np.ndarray]:
    return batches if steps_left is None else batches[: max(0, steps_left)]


def _atoms(i1: np.ndarray, i2: np.ndarray, ip: np.ndarray, iq: np.ndarray) -> dict[str, np.ndarray]:
    """Per-sample R, U1, U2, S (bits) from per-sample read-out terms (their means are the unclipped atoms)."""
    return {"R": i1 + i2 - iq, "U1": iq - i2, "U2": iq - i1, "S": ip - iq}


def _fit_readout(
    t1: torch.Tensor,
    t2: torch.Tensor,
    yc: np.ndarray,
    g_arr: np.ndarray,
    tr: np.ndarray,
    ho: np.ndarray,
    n_cls: int,
    n_groups: int,
    rng: np.random.Generator,
    *,
    hidden: int,
    layers: int,
    embed_dim: int,
    discrim_epochs: int,
    align_epochs: int,
    discrim_steps: int | None,
    align_steps: int | None,
    batch_size: int,
    lr: float,
    sinkhorn_iters: int,
    sinkhorn_atol: float,
    device: str | torch.device,
    bar: Any,
) -> list[dict[str, np.ndarray]]:
    """Train the discriminators and alignment nets on rows ``tr``; per-sample read-out terms (bits) on ``ho``,
    per group: ``{"I1", "I2", "Ip", "Iq"}`` arrays (``Iq`` is I(Y;X1) + I_q(X2;Y|X1) per sample)."""
    ty = torch.from_numpy(yc.astype(np.int64)).to(device)
    d1, d2 = t1.shape[1], t2.shape[1]
    disc1 = _mlp(d1, hidden, n_cls, layers).to(device)
    disc2 = _mlp(d2, hidden, n_cls, layers).to(device)
    disc12 = _mlp(d1 + d2, hidden, n_cls, layers).to(device)
    params = [*disc1.parameters(), *disc2.parameters(), *disc12.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    ce = nn.CrossEntropyLoss()
    g_tr = g_arr[tr]
    left = discrim_steps
    for _ in range(discrim_epochs):
        batches = _capped(_group_batches(g_tr, n_groups, batch_size, rng), left)
        for b in batches:
            i = torch.from_numpy(tr[b]).to(device)
            a1, a2, yy = t1[i], t2[i], ty[i]
            loss = ce(disc1(a1), yy) + ce(disc2(a2), yy) + ce(disc12(torch.cat([a1, a2], 1)), yy)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        left = None if left is None else left - len(batches)
        if bar is not None:
            bar.update(1)
    for m in (disc1, disc2, disc12):
        m.eval().requires_grad_(False)

    align = _Align(d1, d2, hidden, embed_dim, n_cls, layers).to(device)
    opt2 = torch.optim.Adam(align.parameters(), lr=lr)
    left = align_steps
    for _ in range(align_epochs):
        batches = _capped(_group_batches(g_tr, n_groups, batch_size, rng), left)
        for b in batches:
            i = torch.from_numpy(tr[b]).to(device)
            a1, a2 = t1[i], t2[i]
            with torch.no_grad():
                p1, p2 = disc1(a1).softmax(1), disc2(a2).softmax(1)
            q = _sinkhorn(align(a1, a2), p1, p2, sinkhorn_iters, sinkhorn_atol)
            loss = _cond_mi(q, p1).mean()
            opt2.zero_grad(set_to_none=True)
            loss.backward()
            opt2.step()
        left = None if left is None else left - len(batches)
        if bar is not None:
            bar.update(1)

    align.eval()
    out: list[dict[str, np.ndarray]] = []
    with torch.no_grad():
        for g in range(n_groups):
            sel = ho[g_arr[ho] == g]
            tr_g = tr[g_tr == g]
            py = np.bincount(yc[tr_g], minlength=n_cls).astype(np.float64) + 1e-6
            logpy = torch.from_numpy(np.log(py / py.sum()).astype(np.float32)).to(device)
            parts: dict[str, list[np.ndarray]] = {"I1": [], "I2": [], "Ip": [], "Iq": []}
            for s in range(0, len(sel), batch_size):
                i = torch.from_numpy(sel[s : s + batch_size]).to(device)
                a1, a2 = t1[i], t2[i]
                l1, l2 = disc1(a1).log_softmax(1), disc2(a2).log_softmax(1)
                l12 = disc12(torch.cat([a1, a2], 1)).log_softmax(1)
                kl = lambda lp, lq=logpy: (lp.exp() * (lp - lq)).sum(1)  # noqa: E731
                i1 = kl(l1)
                q = _sinkhorn(align(a1, a2), l1.exp(), l2.exp(), sinkhorn_iters, sinkhorn_atol)
                for k, v in (("I1", i1), ("I2", kl(l2)), ("Ip", kl(l12)), ("Iq", i1 + _cond_mi(q, l1.exp()))):
                    parts[k].append(v.double().cpu().numpy() / LN2)
            out.append({k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()})
    return out


def batch_pid_groups(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None = None,
    *,
    hidden: int = 64,
    layers: int = 2,
    embed_dim: int = 16,
    discrim_epochs: int = 20,
    align_epochs: int = 6,
    discrim_steps: int | None = None,
    align_steps: int | None = None,
    batch_size: int = 256,
    lr: float = 2e-3,
    sinkhorn_iters: int = 60,
    sinkhorn_atol: float = 0.01,
    holdout: float = 0.2,
    null: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    eval_index: np.ndarray | None = None,
) -> list[PIDResult]:
    """BATCH PID per group (``groups`` = int array, default one group); see the module docstring.

    ``eval_index``: the rows to read out on (e.g. another split's, or every group of held-out samples); the
    networks are trained on every other row. Default: a random ``holdout`` share of the rows.
    ``discrim_steps`` / ``align_steps`` cap the optimisation steps (batches) of the two stages (None = all epochs).

    Each result's ``extras`` hold the unclipped atoms (``raw``: R, U1, U2, S) and their standard errors (``se``,
    from the spread of the per-sample read-out contributions). ``null=True`` also fits the same networks (same
    sizes, steps and seed) on labels permuted within each group -- the read-out of an estimator that can only find
    chance structure -- and subtracts its atoms from the reported ones (``extras["null"]``; ``se`` then covers both
    read-outs). The KL read-out is never negative per sample, so without the null small samples read as positive
    information."""
    t0 = time.perf_counter()
    x1 = np.asarray(x1, dtype=np.float32).reshape(len(x1), -1)
    x2 = np.asarray(x2, dtype=np.float32).reshape(len(x2), -1)
    classes, yc = np.unique(np.asarray(y), return_inverse=True)
    yc = yc.ravel()
    n, n_cls = len(yc), max(2, len(classes))
    if not (len(x1) == len(x2) == n):
        raise ValueError(f"x1, x2, y lengths differ: {len(x1)}, {len(x2)}, {n}")
    g_arr = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    n_groups = int(g_arr.max()) + 1
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    perm = rng.permutation(n)
    if eval_index is None:
        n_ho = max(1, int(round(holdout * n)))
        ho, tr = perm[:n_ho], perm[n_ho:]
    else:
        is_eval = np.zeros(n, dtype=bool)
        is_eval[np.asarray(eval_index, dtype=np.int64)] = True
        ho, tr = np.flatnonzero(is_eval), perm[~is_eval[perm]]

    if len(classes) < 2:  # H(Y) = 0: no information to share out (the networks would only fit noise)
        zero = {k: 0.0 for k in ("R", "U1", "U2", "S")}
        return [
            PIDResult(
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                extras={
                    "raw": dict(zero),
                    "se": dict(zero),
                    "n_train": int((g_arr[tr] == g).sum()),
                    "n_eval": int((g_arr[ho] == g).sum()),
                    "seconds": time.perf_counter() - t0,
                },
            )
            for g in range(n_groups)
        ]

    def prep(x: np.ndarray) -> torch.Tensor:
        mu, sd = x[tr].mean(0), x[tr].std(0)
        z = (x - mu) / np.where(sd > 1e-8, sd, 1.0)
        if n_groups > 1:
            z = np.concatenate([z, np.eye(n_groups, dtype=np.float32)[g_arr]], 1)
        return torch.from_numpy(z.astype(np.float32)).to(device)

    t1, t2 = prep(x1), prep(x2)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=(discrim_epochs + align_epochs) * (2 if null else 1), desc="BATCH PID", leave=False)
    kw: dict[str, Any] = dict(
        hidden=hidden,
        layers=layers,
        embed_dim=embed_dim,
        discrim_epochs=discrim_epochs,
        align_epochs=align_epochs,
        discrim_steps=discrim_steps,
        align_steps=align_steps,
        batch_size=batch_size,
        lr=lr,
        sinkhorn_iters=sinkhorn_iters,
        sinkhorn_atol=sinkhorn_atol,
        device=device,
        bar=bar,
    )
    terms = _fit_readout(t1, t2, yc, g_arr, tr, ho, n_cls, n_groups, rng, **kw)
    null_terms = None
    if null:
        y_null = yc.copy()
        null_rng = np.random.default_rng([seed, 1])
        for g in range(n_groups):  # permute within group, separately on the fit and the read-out rows
            for part in (tr, ho):
                idx = part[g_arr[part] == g]
                y_null[idx] = yc[null_rng.permutation(idx)]
        torch.manual_seed(seed)
        null_terms = _fit_readout(t1, t2, y_null, g_arr, tr, ho, n_cls, n_groups, rng, **kw)
    if bar is not None:
        bar.close()

    results: list[PIDResult] = []
    clip = lambda z: float(z) if z > 0 else 0.0  # noqa: E731
    for g in range(n_groups):
        tv = terms[g]
        cnt = len(tv["I1"])
        v = {k: float(a.mean()) if cnt else 0.0 for k, a in tv.items()}
        iq = max(v["Iq"], v["I1"], v["I2"])
        per = _atoms(tv["I1"], tv["I2"], tv["Ip"], tv["Iq"])
        raw = {"R": v["I1"] + v["I2"] - iq, "U1": iq - v["I2"], "U2": iq - v["I1"], "S": v["Ip"] - iq}
        var = {k: float(a.var(ddof=1)) / cnt if cnt > 1 else 0.0 for k, a in per.items()}
        extras: dict[str, Any] = {"I1": v["I1"], "I2": v["I2"], "Iq": iq, "n_train": int((g_arr[tr] == g).sum())}
        extras["n_eval"] = cnt
        total = v["Ip"]
        if null_terms is not None:
            nv = null_terms[g]
            nper = _atoms(nv["I1"], nv["I2"], nv["Ip"], nv["Iq"])
            nraw = {k: float(a.mean()) if len(a) else 0.0 for k, a in nper.items()}
            extras["null"] = nraw
            extras["total_null"] = float(nv["Ip"].mean()) if len(nv["Ip"]) else 0.0
            raw = {k: raw[k] - nraw[k] for k in raw}
            var = {k: var[k] + (float(nper[k].var(ddof=1)) / len(nper[k]) if len(nper[k]) > 1 else 0.0) for k in var}
            total = total - extras["total_null"]
        extras["raw"] = raw
        extras["se"] = {k: math.sqrt(max(var[k], 0.0)) for k in var}
        results.append(
            PIDResult(
                R=clip(raw["R"]),
                U1=clip(raw["U1"]),
                U2=clip(raw["U2"]),
                S=clip(raw["S"]),
                total=clip(total),
                extras=extras,
            )
        )
    secs = time.perf_counter() - t0
    for r in results:
        r.extras["seconds"] = secs
    return results


def pid_batch(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    *,
    discrim_epochs: int = 20,
    align_epochs: int = 6,
    batch_size: int = 256,
    hidden: int = 64,
    embed_dim: int = 16,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **kwargs: Any,
) -> PIDResult:
    """BATCH estimate (bits) of R, U1, U2, S for ``x1[N, ...]``, ``x2[N, ...]`` and discrete ``y[N]``."""
    return batch_pid_groups(
        x1,
        x2,
        y,
        None,
        discrim_epochs=discrim_epochs,
        align_epochs=align_epochs,
        batch_size=batch_size,
        hidden=hidden,
        embed_dim=embed_dim,
        seed=seed,
        device=device,
        progress=progress,
        **kwargs,
    )[0]
