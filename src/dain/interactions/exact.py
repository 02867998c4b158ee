"""Exact partial information decomposition for discrete variables (Bertschinger et al. 2014, "BROJA").

All four atoms follow from ``q* = argmin_{q in Δp} I_q(X1,X2;Y)`` where ``Δp`` keeps the (x1, y) and (x2, y)
marginals of ``p``. The problem is convex; we solve it by entropic mirror descent (= the alternating
divergence
minimisation of Banerjee, Rauh & Montúfar 2018 for step size 1) whose Bregman projection onto ``Δp`` is a
per-label Sinkhorn scaling, with an adaptive over-relaxed step and backtracking.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LN2 = float(np.log(2.0))


@dataclass
class PIDResult:
    """Redundancy, uniqueness (of X1, of X2) and synergy in bits; ``total`` = I_p(X1,X2;Y)."""

    R: float
    U1: float
    U2: float
    S: float
    total: float
    lag: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extras"]:
            d.pop("extras")
        return d

    def dominant(self) -> str:
        """Name of the largest atom (``"R"``, ``"U1"``, ``"U2"`` or ``"S"``)."""
        vals = {"R": self.R, "U1": self.U1, "U2": self.U2, "S": self.S}
        return max(vals, key=vals.__getitem__)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x, dtype=np.float64)
    m = x > 0
    out[m] = x[m] * np.log(y[m])
    return out


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in nats of a (flattened) distribution."""
    p = np.asarray(p, dtype=np.float64).ravel()
    return float(-_xlogy(p, p).sum())


def mutual_information(pxy: np.ndarray) -> float:
    """I(X;Y) in nats of a 2-d joint table."""
    return entropy(pxy.sum(1)) + entropy(pxy.sum(0)) - entropy(pxy)


def _mi_joint(q: np.ndarray) -> float:
    """I(X1,X2;Y) in nats for a table q[x1, x2, y]."""
    return entropy(q.sum(2)) + entropy(q.sum((0, 1))) - entropy(q)


def _newton_project(q: np.ndarray, r: np.ndarray, c: np.ndarray, tol: float, max_iter: int = 50) -> np.ndarray:
    """Finish one label's matrix scaling with damped Newton steps on the dual (fast when q is nearly
    degenerate)."""
    rows, cols = np.flatnonzero(r > 0), np.flatnonzero(c > 0)
    out = np.zeros_like(q)
    if len(rows) == 0 or len(cols) == 0:
        return out
    k = q[np.ix_(rows, cols)]
    rr, cc = r[rows], c[cols]
    n1, n2 = k.shape
    x = np.zeros(n1 + n2 - 1)  # u (n1), v (n2 - 1); v[-1] = 0 fixes the gauge

    def scaled(z: np.ndarray) -> np.ndarray:
        v = np.append(z[n1:], 0.0)
        return k * np.exp(np.clip(z[:n1, None] + v[None, :], -700, 700))

    def phi(z: np.ndarray) -> float:
        return float(scaled(z).sum() - rr @ z[:n1] - cc[:-1] @ z[n1:])

    f = phi(x)
    for _ in range(max_iter):
        m = scaled(x)
        g = np.concatenate([m.sum(1) - rr, (m.sum(0) - cc)[:-1]])
        if np.abs(g).max() < tol:
            break
        h = np.zeros((n1 + n2 - 1, n1 + n2 - 1))
        h[np.arange(n1), np.arange(n1)] = m.sum(1)
        h[n1 + np.arange(n2 - 1), n1 + np.arange(n2 - 1)] = m.sum(0)[:-1]
        h[:n1, n1:] = m[:, :-1]
        h[n1:, :n1] = m[:, :-1].T
        step = np.linalg.lstsq(h + 1e-300 * np.eye(len(h)), -g, rcond=None)[0]
        t = 1.0
        while t > 1e-12:
            fn = phi(x + t * step)
            if fn <= f:
                break
            t /= 2
        x, f = x + t * step, fn
    out[np.ix_(rows, cols)] = scaled(x)
    return out


def _sinkhorn(k: np.ndarray, r: np.ndarray, c: np.ndarray, tol: float = 1e-12, max_iter: int = 300) -> np.ndarray:
    """KL-project k[x1,x2,y] >= 0 onto {q : q.sum(1) = r[x1,y], q.sum(0) = c[x2,y]} (per label y).

    Plain Sinkhorn scaling; labels that have not converged after ``max_iter`` sweeps are finished by
    Newton."""
    q = k.copy()
    for _ in range(max_iter):
        rs = q.sum(1)
        q *= np.divide(r, rs, out=np.zeros_like(r), where=rs > 0)[:, None, :]
        cs = q.sum(0)
        q *= np.divide(c, cs, out=np.zeros_like(c), where=cs > 0)[None, :, :]
        if np.abs(q.sum(1) - r).max() < tol:
            return q
    bad = np.abs(q.sum(1) - r).max(0) >= tol
    for y in np.flatnonzero(bad):
        q[:, :, y] = _newton_project(q[:, :, y], r[:, y], c[:, y], tol)
    return q


def solve_q(
    p: np.ndarray, tol: float = 1e-8, max_iter: int = 2000, feas_tol: float = 1e-8
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return ``q* = argmin_{q in Δp} I_q(X1,X2;Y)`` for a joint table ``p[x1, x2, y]`` and solver info."""
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    r = p.sum(1)  # p(x1, y)
    c = p.sum(0)  # p(x2, y)
    py = p.sum((0, 1))
    # start from the conditionally independent coupling: it has the largest support of any q in Δp
    q = np.where(py > 0, r[:, None, :] * c[None, :, :] / np.where(py > 0, py, 1.0), 0.0)
    f = _mi_joint(q)
    eta = 1.0
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007
        active = q > 0  # entries driven exactly to zero stay zero (multiplicative updates)
        qx = np.broadcast_to(q.sum(2, keepdims=True), q.shape)
        # gradient of I_q(X1,X2;Y) on Δp is log q(y|x1,x2) up to per-label constants
        g = np.zeros_like(q)
        g[active] = np.log(q[active] / qx[active])
        while True:
            logk = np.full_like(q, -np.inf)
            logk[active] = np.log(q[active]) - eta * g[active]
            logk -= logk[active].max()
            k = np.where(logk > -40.0, np.exp(logk), 0.0)  # prune vanishing entries: keeps Sinkhorn fast
            q_new = _sinkhorn(k, r, c)
            err = max(np.abs(q_new.sum(1) - r).max(), np.abs(q_new.sum(0) - c).max())
            f_new = _mi_joint(q_new) if err < feas_tol else np.inf
            if f_new <= f + 1e-15 or eta <= 1.0:
                break
            eta = max(1.0, eta / 2.0)
        if not np.isfinite(f_new):  # projection failed even at the plain step: keep the last feasible q
            break
        dec = f - f_new
        q, f = q_new, f_new
        if dec <= tol:
            if eta <= 1.0:
                break
            eta = 1.0
        else:
            eta = min(eta * 1.5, 64.0)
    return q, {"iterations": it, "objective_nats": f}


def pid_from_joint(p: np.ndarray, **solver: Any) -> PIDResult:
    """PID (bits) of a joint probability table ``p[x1, x2, y]`` (any non-negative array; it is normalised)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 3:
        raise ValueError(f"joint table must be 3-d [x1, x2, y], got shape {p.shape}")
    if (p < 0).any() or p.sum() <= 0:
        raise ValueError("joint table must be non-negative with positive mass")
    p = p / p.sum()
    q, info = solve_q(p, **solver)
    i1 = mutual_information(p.sum(1)) / LN2
    i2 = mutual_information(p.sum(0)) / LN2
    ip = _mi_joint(p) / LN2
    iq = min(_mi_joint(q) / LN2, ip)
    iq = max(iq, i1, i2)  # I_q >= I(Xi;Y) holds exactly; guard against round-off
    clip = lambda v: float(v) if v > 1e-9 else 0.0  # noqa: E731
    return PIDResult(
        R=clip(i1 + i2 - iq),
        U1=clip(iq - i2),
        U2=clip(iq - i1),
        S=clip(ip - iq),
        total=clip(ip),
        extras={"I1": i1, "I2": i2, "Iq": iq, **info},
    )


def joint_table(x1: np.ndarray, x2: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Empirical joint ``p[x1, x2, y]`` of three integer code vectors (codes 0..n-1)."""
    n1, n2, ny = int(x1.max()) + 1, int(x2.max()) + 1, int(y.max()) + 1
    flat = (x1.astype(np.int64) * n2 + x2) * ny + y
    counts = np.bincount(flat, minlength=n1 * n2 * ny).astype(np.float64)
    return counts.reshape(n1, n2, ny) / len(y)


def pid_exact(
    x1: np.ndarray,
    x2: np.ndarray,
    y: np.ndarray,
    *,
    bins: int | None = None,
    method: str = "auto",
    seed: int = 0,
    **solver: Any,
) -> PIDResult:
    """Plug-in PID (bits) from samples. Integer inputs are used as-is (rows of a 2-d array form one symbol);
    float inputs are discretised (quantile bins per feature, k-means above 3 dims; see :mod:`.discretize`)
    with ``bins`` levels (default 4). ``y`` must be discrete."""
    from dain.interactions.discretize import discretize, encode_discrete

    x1 = np.asarray(x1)
    x2 = np.asarray(x2)
    if not (len(x1) == len(x2) == len(y)):
        raise ValueError(f"x1, x2, y lengths differ: {len(x1)}, {len(x2)}, {len(y)}")
    c1 = discretize(x1, bins=bins, method=method, seed=seed)
    c2 = discretize(x2, bins=bins, method=method, seed=seed)
    cy = encode_discrete(np.asarray(y))
    res = pid_from_joint(joint_table(c1, c2, cy), **solver)
    res.extras["n"] = len(cy)
    res.extras["alphabet"] = [int(c1.max()) + 1, int(c2.max()) + 1, int(cy.max()) + 1]
    return res
