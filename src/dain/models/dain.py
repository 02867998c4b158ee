"""DAIN: Dynamic Agent-based Interaction Network (our design; the paper's text beyond its abstract is not
public). See docs/dain.md.

Pipeline per batch:

1. **glimpses**: a cheap fixed summary of every modality (vector itself, sequence mean/std/last, pooled image)
   projected to a few features; nothing expensive has run yet;
2. the **shared agent** (always on) predicts from the glimpses, and the **meta-controller** scores the shared agent
   and the K routed agents from the glimpses and the modality mask;
3. the schedule picks the routed agents per sample: ``topk`` (the best ``budget``), ``threshold`` (a confidence
   cascade: only samples the shared agent is unsure about wake any) or ``dense``;
4. **encoders run only on the rows whose active agents read their modality**; each active routed agent reads the
   pooled encodings of its role's modalities (uniqueness / redundancy / synergy);
5. R rounds of compressed (r-dim, b-bit) messages among the active agents of each sample (shared included);
6. consensus: softmax of the controller scores over the sample's active agents (the shared agent always among
   them, so the controller gets a task gradient at any budget, k = 1 included) weighting each agent's prediction;
7. training computes every agent on every row: each agent's own prediction is supervised (``agents``), the
   controller learns a cost-aware per-sample oracle over all agents (``route``), redundancy agents are tested on
   single modalities (``spec``), and the expected compute and bits are penalised (``sparse``, ``comm``)."""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import ModalityEncoders
from dain.encoders.base import encode_rows
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.dain_parts.agents import SHARED, Agent, AgentRole, default_roles, parse_role
from dain.models.dain_parts.communication import CommRound, count_bits
from dain.models.dain_parts.controller import GATINGS, MetaController, Schedule, confidence, schedule
from dain.models.dain_parts.dispatch import DISPATCHES, dispatch_rows, dispatch_slots
from dain.models.dain_parts.glimpse import Glimpse
from dain.models.dain_parts.objectives import (
    agents_loss,
    expected_cost,
    expected_kbits,
    per_sample_task_loss,
    route_loss,
    route_target,
)
from dain.models.dain_parts.tree_agent import TreeAgent, lightgbm_available

LOSS_NAMES = ("agents", "route", "spec", "sparse", "comm")
TREE_MODES = ("never", "always", "auto")
# tree_agent=auto gives a tree agent to every task type (measured per type: binary on P12; regression on P12's SAPS-I
# and length of stay as bring-your-own folders, 300 and 1000 rows, docs/results.md 2026-12-05 evening; multilabel on
# P12's three outcomes as labels, 300 and 1000 rows, checkpoints selected on macro AUROC, 2026-12-06; multiclass on
# P12's four ways a stay ended, 300 / 1000 / 9471 rows, 2026-12-06 second session) up to this many classes or labels:
# a multiclass booster grows one tree per class and round, and multilabel fits one booster per label and fold, so
# fitting and scoring cost grow with the outputs. Raised from 8 (2026-12-07, fourth session): at 10 classes the trees
# left mfeat (TMC, 5 seeds) and AV-digits (3 seeds) level on test, within one digit, and lifted a 10-class folder whose
# "image" a CNN cannot read from 34 to 99 (gbm 99.5); at 30 classes, +0.45 (one seed). The cost: a 2-5 minute
# cross-fit at 10-30 classes and about 2000 rows (late fusion's fit: 10-60 s)
TREE_AUTO_MAX_OUTPUTS = 32
# what the router is charged per tree comparison, in matrix-product FLOPs of CPU time: LightGBM's predict took about
# 11 ns per comparison (one thread, 256 rows; AV-digits' 8-class fold boosters) where late fusion's forward took
# 0.014 ns per FLOP (the same rows; docs/results.md, issue 12, 2026-12-06 third session). Priced at one FLOP per
# comparison the tree agent looked free, so on AV-digits cut to 4-8 classes the controller woke it on 88-100% of the
# rows in 7 runs of 9, instead of the audio encoder, at up to 15x late fusion's CPU time and no accuracy gained. FLOP
# counts still count one per comparison.
TREE_COMPARISON_COST = 800.0
ADAPTIVE_MODES = ("auto", "off")


def _after_load(module: DAIN, _keys) -> None:  # noqa: ANN001
    """After ``load_state_dict``: switch to the saved inference setting and price the fitted tree agent (its price
    is not saved; a model built before its boosters were loaded priced it unfitted). A module-level function, so the
    model pickles."""
    module._apply_calibration()
    if module.tree is not None and module.tree.fitted:
        module.agent_cost.copy_(module._relative_costs())


@register_model("dain")
class DAIN(nn.Module):
    """A glimpse-reading shared agent plus sparse, communicating, role-specialised agents scheduled per sample."""

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)
        # explicit roles ("unique:fou", "synergy:fou+pix", "redundant:all"); default: one unique agent per modality,
        # synergy:all (M >= 2), redundant:all (M >= 3)
        roles: tuple[str, ...] = ()
        # budget k: routed agents per sample besides the always-on shared agent; set_budget() changes it at test time
        active_agents: int = 2
        # topk | threshold (confidence cascade, <= k) | dense (all available agents) | auto: dense when the train
        # split has fewer than dense_below_rows rows, else topk (resolved from the data by the harness and saved
        # resolved, like tree_agent; built directly, auto is topk)
        gating: str = "auto"
        threshold: float = 0.9  # threshold gating: routed agents wake where the shared agent's confidence is below
        router_noise: float = 0.0  # std of Gaussian noise on the scores used for *selection*, training only
        glimpse_dim: int = 32  # features per modality glimpse (at most the summary's length)
        agent_width: int = 0  # 0 = hidden // 2
        msg_dim: int = 8  # r
        msg_bits: int = 8  # b (0 = float32 messages)
        comm_rounds: int = 1  # R
        dispatch: str = "gather"  # gather (sparse: only active rows run) | dense (everything runs; same numbers)
        route_temperature: float = 0.5
        route_cost: float = 0.05  # per-sample loss an agent must save to be worth running every encoder
        lambda_agents: float = 1.0
        lambda_route: float = 0.1
        lambda_spec: float = 0.1
        lambda_sparse: float = 0.01
        lambda_comm: float = 0.001  # per kilobit per sample
        # a LightGBM agent over the summary features, cross-fitted before training (see dain_parts/tree_agent.py):
        # always | never | auto: `always` for a task whose train split has >= tree_min_rows rows (multiclass and
        # multilabel: at most TREE_AUTO_MAX_OUTPUTS classes or labels) when LightGBM is installed, else `never`;
        # resolved from the data by the harness (resolve_config) and saved resolved; built directly, auto has no
        # tree agent
        tree_agent: str = "auto"
        # at 70 training rows (P12 cut to 70 stays, MIMIC-IV demo) validation favours the trees, as at 300; nothing
        # below 70 was measured (BasicMotions' 32 rows stay without them)
        tree_min_rows: int = 64
        # below this many training rows every agent wakes for every row (gating=auto): with little data to learn
        # routing from, dense gating scored higher on validation on average (P12 cut to 70 / 300 stays: +0.50 /
        # +0.10 AUROC; a 700-row bring-your-own folder +1.8; MIMIC-IV demo -0.5 on 15-row validation splits), and
        # at 1000 stays the two were equal (docs/results.md, issue 12, 2026-12-07)
        dense_below_rows: int = 1000
        # inference after training: "auto" = the cheapest of the lower budgets and the confidence cascade whose
        # validation metric is within adaptive_tolerance of the trained budget's (chosen by the harness on
        # validation rows, saved with the weights; the trained top-k when none is); "off" = the trained top-k
        adaptive: str = "auto"
        adaptive_tolerance: float = 0.003

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        if cfg.gating not in (*GATINGS, "auto"):
            raise ValueError(f"dain: gating must be one of {(*GATINGS, 'auto')}, got {cfg.gating!r}")
        if cfg.dispatch not in DISPATCHES:
            raise ValueError(f"dain: dispatch must be one of {DISPATCHES}, got {cfg.dispatch!r}")
        self.spec, self.cfg = spec, cfg
        d, M, C = cfg.hidden, spec.num_modalities, spec.num_outputs
        names = spec.modality_names
        roles = list(cfg.roles) if cfg.roles else default_roles(names)
        if cfg.adaptive not in ADAPTIVE_MODES:
            raise ValueError(f"dain: adaptive must be one of {ADAPTIVE_MODES}, got {cfg.adaptive!r}")
        if cfg.tree_agent not in TREE_MODES:
            raise ValueError(f"dain: tree_agent must be one of {TREE_MODES}, got {cfg.tree_agent!r}")
        self.role_specs: list[AgentRole] = [parse_role(r, names) for r in roles]
        with_tree = cfg.tree_agent == "always"
        if with_tree:
            self.role_specs.append(AgentRole("tree", (), "tree:summary"))
        self.roles: list[str] = [SHARED] + [r.text for r in self.role_specs]
        self.agent_names: list[str] = [f"a{i}:{r}" for i, r in enumerate(self.roles)]
        self.num_agents = len(self.roles)  # shared agent included
        K = self.num_agents - 1
        self.budget: int = max(0, min(int(cfg.active_agents), K))
        self.gating = self.trained_gating
        self.threshold = float(cfg.threshold)
        w = cfg.agent_width or max(8, d // 2)

        self.glimpse = Glimpse(spec, cfg.glimpse_dim)
        ctx = self.glimpse.out_dim + M
        self.shared = Agent(ctx, w, C, cfg.dropout)
        self.controller = MetaController(ctx, w, K + 1, cfg.dropout)
        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        self.agents = nn.ModuleList(
            [  # the tree agent reads its boosters' logits (no input norm: their scale is the information)
                Agent(C if r.kind == "tree" else len(r.modalities) * d, w, C, cfg.dropout, norm_input=r.kind != "tree")
                for r in self.role_specs
            ]
        )
        self.tree = TreeAgent(spec) if with_tree else None
        self._tree_batch: dict | None = None  # the batch of the running forward: tree logits for the rows that ask
        self.comm = nn.ModuleList([CommRound(w, cfg.msg_dim, cfg.msg_bits) for _ in range(cfg.comm_rounds)])
        read = torch.zeros(K, M)
        for k, r in enumerate(self.role_specs):
            read[k, list(r.modalities)] = 1.0
        self.register_buffer("read_matrix", read, persistent=False)
        self.register_buffer("agent_cost", self._relative_costs(), persistent=False)
        # the inference setting chosen on validation after training, saved with the weights: [budget (-1 = the
        # trained one), cascade threshold (0 = none: top-k), tree weight (0 = none: the consensus alone), fold
        # boosters the tree agent scores (0 = all of them)]
        self.register_buffer("calibration", torch.tensor([-1.0, 0.0, 0.0, 0.0]))
        self.tree_weight = 0.0
        self._tree_all: torch.Tensor | None = None  # tree logits of every row of the running forward (blend)
        self.register_load_state_dict_post_hook(_after_load)

    # ------------------------------------------------------------------ public API
    @staticmethod
    def resolve_config(cfg: Config, data) -> Config:  # noqa: ANN001
        """The config with its data-dependent defaults decided from ``data`` (its train rows and outputs, never its
        names): ``tree_agent="auto"`` becomes ``always`` or ``never``, ``gating="auto"`` ``dense`` or ``topk``. The
        harness calls it before building and saves the result, so a saved config rebuilds the same model."""
        n_train = len(data.splits["train"])
        if cfg.gating == "auto":
            cfg = dataclasses.replace(cfg, gating="dense" if n_train < cfg.dense_below_rows else "topk")
        if cfg.tree_agent != "auto":
            return cfg
        use = n_train >= cfg.tree_min_rows
        use = use and data.spec.num_outputs <= TREE_AUTO_MAX_OUTPUTS  # classes or labels (binary, regression: 1)
        use = use and lightgbm_available()
        return dataclasses.replace(cfg, tree_agent="always" if use else "never")

    @property
    def trained_gating(self) -> str:
        """The gating the model was trained with (``auto`` built without data: topk)."""
        return "topk" if self.cfg.gating == "auto" else self.cfg.gating

    def set_budget(self, k: int | None) -> None:
        """Routed agents per sample besides the shared agent (test-time, no retraining); ``None`` restores the
        trained budget. Dense gating ignores the budget, so on a dense-trained model an explicit ``k`` switches
        dense to top-k and ``None`` switches it back."""
        self.budget = max(0, min(int(self.cfg.active_agents if k is None else k), self.num_agents - 1))
        if self.trained_gating == "dense" and self.gating in ("dense", "topk"):
            self.gating = "dense" if k is None else "topk"

    def set_gating(self, gating: str | None = None, threshold: float | None = None) -> None:
        """Switch gating (e.g. to the ``threshold`` cascade) and its confidence threshold at test time."""
        if gating is not None:
            if gating not in GATINGS:
                raise ValueError(f"dain: gating must be one of {GATINGS}, got {gating!r}")
            self.gating = gating
        if threshold is not None:
            self.threshold = float(threshold)

    def set_calibration(
        self,
        budget: int | None = None,
        threshold: float | None = None,
        tree_weight: float | None = None,
        tree_folds: int | None = None,
    ) -> None:
        """Store the inference setting chosen on validation (``budget``: routed agents per sample, ``None`` = the
        trained budget; ``threshold``: the cascade's confidence, ``None`` = top-k; ``tree_weight`` w: the answer is
        ``(1 - w) * consensus + w * tree agent`` on every row, ``None`` = the consensus alone; ``tree_folds``: the
        tree agent answers with the mean of its first that many fold boosters, ``None`` = all) and switch to it. No
        arguments: back to top-k at the trained budget, no blend, every fold booster."""
        if threshold is not None and not 0.0 < float(threshold) <= 1.0:  # 0 is stored as "no cascade"
            raise ValueError(f"dain: a cascade threshold is a confidence in (0, 1], got {threshold}")
        before = self.calibration.clone()
        self.calibration.copy_(
            torch.tensor(
                [
                    -1.0 if budget is None else float(budget),
                    0.0 if threshold is None else float(threshold),
                    0.0 if tree_weight is None else float(tree_weight),
                    0.0 if tree_folds is None else float(tree_folds),
                ]
            )
        )
        try:
            self._apply_calibration()
        except ValueError:  # a rejected setting leaves the model as it was (and its state_dict loadable)
            self.calibration.copy_(before)
            self._apply_calibration()
            raise

    def _apply_calibration(self) -> None:
        budget, c = int(self.calibration[0]), round(float(self.calibration[1]), 6)  # float32: 0.9 -> 0.90000004
        w = round(float(self.calibration[2]), 6)
        folds = int(self.calibration[3])
        if (w or folds) and self.tree is None:
            raise ValueError("dain: a tree weight or fold count needs the tree agent (tree_agent=always|auto)")
        self.tree_weight = w
        if self.tree is not None:
            self.tree.set_folds(folds or None)
        self.set_gating(self.trained_gating, self.cfg.threshold)
        self.set_budget(None if budget < 0 else budget)  # on a dense-trained model an explicit budget runs top-k
        if c > 0:
            self.set_gating("threshold", c)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # runs saved before calibration existed predict with top-k, as they were scored; runs saved before the tree
        # weight existed have two entries: no blend
        cal = state_dict.setdefault(prefix + "calibration", torch.tensor([-1.0, 0.0, 0.0, 0.0]))
        if cal.numel() < 4:  # saved before the tree weight (2 entries) or the fold count (3): none, all folds
            state_dict[prefix + "calibration"] = torch.cat([cal, cal.new_zeros(4 - cal.numel())])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, batch: dict, budget: int | None = None) -> ModelOutput:
        out = self._run(batch, budget, self.gating, self.cfg.dispatch)
        if self._blending():  # the validation-fitted weight of the tree agent's answer on every row
            w = self.tree_weight
            out = dataclasses.replace(out, logits=(1.0 - w) * out.logits + w * self._tree_all.to(out.logits.dtype))
        return out

    def _blending(self) -> bool:
        return not self.training and self.tree_weight > 0 and self.tree is not None and self.tree.fitted

    def flops_per_sample(self, batch: dict, dense: bool = False) -> float:
        """FLOPs per sample of the eval forward as it runs (every component: glimpses, controller, shared agent, the
        encoders on the rows that need them, agents, messages); ``dense=True``: every agent on every sample."""
        from dain.flops import count_flops

        if dense:
            run = lambda b: self._run(b, self.num_agents - 1, "dense", self.cfg.dispatch)  # noqa: E731
        else:
            run = lambda b: self._run(b, None, self.gating, self.cfg.dispatch)  # noqa: E731
        if self.tree is None or not self.tree.fitted:
            return count_flops(self, batch, run)
        # trees are invisible to the FLOP counter: count the rows the boosters score during the counted forward
        # (the routed rows, every row when blending or under dense dispatch) and add their comparisons
        scored = [0]
        score, own = self.tree.forward, self.tree.__dict__.get("forward")  # own: a forward set on the instance

        def counted(b: dict) -> torch.Tensor:
            scored[0] += b["mask"].shape[0]
            return score(b)

        self.tree.forward = counted
        try:
            flops = count_flops(self, batch, run)
        finally:
            if own is None:
                del self.tree.forward
            else:
                self.tree.forward = own
        flops += scored[0] / max(batch["mask"].shape[0], 1) * self.tree.flops_per_sample()
        return flops

    # ------------------------------------------------------------------ internals
    def prepare(self, data, cache_dir=None, log=None) -> None:  # noqa: ANN001
        """Before training: cross-fit the tree agent (when there is one); ``log(text)`` reports it (it can take
        minutes, before the first epoch); it also says when every agent runs on every row."""
        log = log or (lambda _text: None)
        n = len(data.splits["train"])
        if self.trained_gating == "dense":
            log(
                f"dain: every agent on every row (gating=dense; gating=auto chooses it below "
                f"{self.cfg.dense_below_rows} training rows, here {n})"
            )
        if self.tree is None:
            return
        log(f"dain: cross-fitting the tree agent ({self.tree.folds} LightGBM folds, {n} training rows)")
        t0 = time.perf_counter()
        self.tree.fit(data, seed=int(torch.initial_seed() % (2**31)), threads=torch.get_num_threads(), log=log)
        log(f"dain: tree agent fitted in {time.perf_counter() - t0:.1f} s")
        self.agent_cost.copy_(self._relative_costs())  # the fitted boosters' price, for the router

    def _relative_costs(self) -> torch.Tensor:
        """Cost of each agent [K+1] as a fraction of running every encoder and routed neural agent (shared: 0),
        counted once with the FLOP counter on one zero sample; a fitted tree agent adds the comparisons of all its
        fold boosters (what training runs, whatever calibration later chooses) at ``TREE_COMPARISON_COST`` each (so
        its cost can exceed 1)."""
        from dain.flops import total_flops

        steps = {
            m.name: torch.ones(1, m.shape[0], dtype=torch.bool) for m in self.spec.modalities if m.kind == "sequence"
        }
        enc = []
        was = self.training
        self.eval()
        for m in self.spec.modalities:
            x = torch.zeros(1, *m.shape)
            encoder = self.encode.encoders[m.name]
            enc.append(total_flops(encoder, functools.partial(encoder, x, steps.get(m.name))))
        self.train(was)
        agent = [2.0 * sum(p.numel() for p in a.parameters()) for a in self.agents]
        costs = [sum(enc[j] for j in r.modalities) + agent[k] for k, r in enumerate(self.role_specs)]
        total = max(sum(enc) + sum(agent), 1.0)
        if self.tree is not None and self.tree.fitted:
            costs[-1] += TREE_COMPARISON_COST * self.tree.flops_per_sample(all_folds=True)
        return torch.tensor([0.0] + [c / total for c in costs])

    def _pooled(self, batch: dict, needed: torch.Tensor, mode: str) -> list[torch.Tensor]:
        """Pooled encoding [B, d] per modality; rows where ``needed`` is False (or the modality is absent) get the
        learned missing embedding, and in ``gather`` mode the encoder never runs on them."""
        mask = batch["mask"].to(torch.bool)
        steps = batch.get("steps", {})
        B = mask.shape[0]
        use = needed & mask
        counts = use.sum(0).tolist() if mode != "dense" else [B] * len(self.spec.modalities)  # one host sync
        out = []
        for j, m in enumerate(self.spec.modalities):
            miss = self.encode.missing[j]
            x, st = batch["inputs"][m.name], steps.get(m.name)
            enc = self.encode.encoders[m.name]
            if mode == "dense":
                pooled = torch.where(use[:, j : j + 1], enc(x, st).pooled, miss)
            elif counts[j] == B:  # every row needs it: no gather/scatter
                pooled = enc(x, st).pooled
            elif counts[j]:
                rows = torch.nonzero(use[:, j]).squeeze(1)
                p = encode_rows(enc, x, st, rows).pooled
                pooled = miss.to(p.dtype).expand(B, -1).index_copy(0, rows, p)
            else:
                pooled = miss.expand(B, -1)
                if self.training:  # an encoder no row runs stays in the graph (DDP: no unused parameters)
                    pooled = pooled + 0.0 * sum(p.sum() for p in enc.parameters())
            if self.training:  # every missing embedding takes part in the graph (DDP: no unused parameters)
                pooled = pooled + 0.0 * miss.sum()
            out.append(pooled)
        return out

    def _agent_input(self, k: int, pooled: list[torch.Tensor], rows: torch.Tensor | None) -> torch.Tensor:
        if self.role_specs[k].kind == "tree":
            return self._tree_logits(rows)
        x = torch.cat([pooled[j] for j in self.role_specs[k].modalities], -1)
        return x if rows is None else x.index_select(0, rows)

    def _tree_logits(self, rows: torch.Tensor | None) -> torch.Tensor:
        """The tree agent's logits for ``rows`` of the running batch (all rows: ``None``): the boosters run only on
        the rows routed to the tree, so its wall-clock follows the FLOPs counted for it."""
        batch = self._tree_batch
        assert batch is not None and self.tree is not None
        if self._tree_all is not None:  # blending: computed once for every row
            return self._tree_all if rows is None else self._tree_all.index_select(0, rows)
        if rows is not None:
            batch = {
                "inputs": {k: v.index_select(0, rows) for k, v in batch["inputs"].items()},
                "mask": batch["mask"].index_select(0, rows),
                "steps": {k: v.index_select(0, rows) for k, v in batch.get("steps", {}).items()},
                **({"index": batch["index"].index_select(0, rows)} if "index" in batch else {}),
            }
        if not self.tree.fitted:
            return batch["mask"].new_zeros(batch["mask"].shape[0], self.spec.num_outputs, dtype=torch.float32)
        return self.tree(batch)

    def _run(self, batch: dict, budget: int | None, gating: str, dispatch: str) -> ModelOutput:
        cfg = self.cfg
        mask: torch.Tensor = batch["mask"].to(torch.bool)
        B, M = mask.shape
        K = self.num_agents - 1
        budget = self.budget if budget is None else max(0, min(int(budget), K))
        ctx = torch.cat([self.glimpse(batch), mask.to(self.read_matrix.dtype)], -1)
        z_shared = self.shared(ctx)
        scores = self.controller(ctx)
        routed_avail = (mask.to(self.read_matrix.dtype) @ self.read_matrix.T) > 0
        if self.tree is not None:  # the tree agent (last) reads raw summaries: available once fitted
            routed_avail[:, -1] = mask.any(1) & self.tree.fitted
            self._tree_batch, self._tree_all = batch, None
            if self._blending():
                self._tree_all = self._tree_logits(None)
        available = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=mask.device), routed_avail], 1)
        train_all = self.training and "target" in batch
        if gating == "threshold" and not self.training:
            return self._cascade(batch, scores, available, z_shared, budget)
        noise = cfg.router_noise if self.training else 0.0
        sched = schedule(scores, available, gating, budget, noise)
        active = sched.active
        needed = (active[:, 1:].to(self.read_matrix.dtype) @ self.read_matrix) > 0  # [B, M]

        all_z: torch.Tensor | None = None
        if train_all:
            # training: every agent on every row (deep supervision and the oracle route target need all of them);
            # an encoder runs on the rows where its modality is present only (a missing row's values never reach
            # the encoder: no batch-norm statistics from them, no 0 * NaN gradients)
            pooled = self._pooled(batch, torch.ones_like(mask), "gather")
            all_z = torch.stack([z_shared] + [self.agents[k](self._agent_input(k, pooled, None)) for k in range(K)], 1)
            flat = all_z.reshape(B * (K + 1), -1)
            idx = (torch.arange(B, device=mask.device).view(B, 1) * (K + 1) + sched.slot_agent).reshape(-1)
            z0 = flat.index_select(0, idx).view(B, sched.slot_agent.shape[1], -1)
        else:
            pooled = self._pooled(batch, needed, dispatch)

            def run_agent(k: int, rows: torch.Tensor | None) -> torch.Tensor:
                if k == 0:
                    return z_shared if rows is None else z_shared.index_select(0, rows)
                return self.agents[k - 1](self._agent_input(k - 1, pooled, rows))

            z0 = dispatch_rows(run_agent, sched, B, dispatch, z_shared.shape[1], z_shared)
        logits, wts, att = self._consensus(z0, sched, dispatch)
        losses = self._losses(batch, sched, all_z, pooled, budget, gating) if self.training else {}
        return self._output(logits, sched, wts, att, needed & mask, budget, losses)

    def _output(
        self,
        logits: torch.Tensor,
        sched: Schedule,
        wts: torch.Tensor,
        att: torch.Tensor,
        enc_run: torch.Tensor,
        budget: int,
        losses: dict[str, torch.Tensor] | None = None,
    ) -> ModelOutput:
        """Routing record and statistics of a forward (auxiliary losses are training terms: none in eval)."""
        cfg = self.cfg
        bits = count_bits(sched.slot_mask, len(self.comm), cfg.msg_dim, cfg.msg_bits)
        n_active = sched.slot_mask.sum(1)
        sender_recv = att.transpose(1, 2)
        msgs = sched.to_agents(sched.to_agents(sender_recv).transpose(1, 2)).transpose(1, 2)
        routing = {
            "gates": sched.probs.detach(),
            "scores": sched.scores.detach(),
            "available": sched.available,
            "active": sched.active,
            "consensus_weights": sched.to_agents(wts).detach(),
            "messages": msgs.detach(),
            "bits": bits,
            "encoders_run": enc_run,
        }
        stats = {
            "active_agents": n_active.to(torch.float32).mean(),
            "comm_bits": bits.mean(),
            "encoders_run": enc_run.to(torch.float32).sum(1).mean(),
        }
        return ModelOutput(logits, losses or {}, routing, stats)

    def _consensus(
        self, z: torch.Tensor, sched: Schedule, mode: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Messages among a schedule's slots, each slot's head, and the controller-weighted consensus: returns
        (logits [B, C], consensus weights [B, S], last round's attention [B, S, S])."""
        B, S = sched.slot_mask.shape
        att = z.new_zeros(B, S, S)
        for rnd in self.comm if S > 1 else ():  # a single slot has nobody to message: the round is the identity
            z, att = rnd(z, sched.slot_mask)
        heads = [self.shared.head] + [a.head for a in self.agents]
        slot_scores = torch.gather(sched.scores, 1, sched.slot_agent).masked_fill(~sched.slot_mask, float("-inf"))
        wts = torch.softmax(slot_scores, dim=-1)
        wts = torch.where(sched.slot_mask, wts, torch.zeros_like(wts))
        logits = dispatch_slots(lambda k, x: heads[k](x), z, wts, sched, mode, self.spec.num_outputs)
        return logits, wts, att

    def _cascade(
        self, batch: dict, scores: torch.Tensor, available: torch.Tensor, z_shared: torch.Tensor, budget: int
    ) -> ModelOutput:
        """Adaptive inference (``threshold`` gating): start from the shared agent; while a sample's consensus is
        less confident than ``threshold``, wake its next routed agent (controller order, at most ``budget``). An
        encoder runs once per (sample, modality), only when a woken agent reads it, and once per slot on all the rows
        that need it (so a slot costs at most one call per encoder, whatever the mix of agents woken)."""
        spec = self.spec
        mask = batch["mask"].to(torch.bool)
        steps = batch.get("steps", {})
        B, M = mask.shape
        K1 = self.num_agents
        full = schedule(scores, available, "topk", budget)
        order, ok = full.slot_agent, full.slot_mask  # [B, S]: shared first, then routed by controller score
        S = order.shape[1]
        pooled = [self.encode.missing[j].expand(B, -1).clone() for j in range(M)]
        have = torch.zeros(B, M, dtype=torch.bool, device=mask.device)
        Z = z_shared.new_zeros(B, S, z_shared.shape[1])
        Z[:, 0] = z_shared
        logits = z_shared.new_zeros(B, spec.num_outputs)
        n_slots = torch.ones(B, dtype=torch.long, device=mask.device)
        wts_all = z_shared.new_zeros(B, S)
        att_all = z_shared.new_zeros(B, S, S)
        todo = torch.arange(B, device=mask.device)
        for j in range(S):
            if j > 0:
                wake = todo[ok[todo, j]]
                agent = order[wake, j]
                # every encoder runs once per slot, on the union of the woken rows whose agent reads it
                reads = (self.read_matrix.index_select(0, agent - 1) > 0) & mask[wake] & ~have[wake]  # [n, M]
                for m in torch.nonzero(reads.any(0)).squeeze(1).tolist():
                    need = wake[reads[:, m]]
                    x, st = batch["inputs"][spec.modalities[m].name], steps.get(spec.modalities[m].name)
                    enc = self.encode.encoders[spec.modalities[m].name]
                    p = encode_rows(enc, x, st, need).pooled
                    pooled[m] = pooled[m].index_copy(0, need, p.to(pooled[m].dtype))
                    have[need, m] = True
                for a in torch.unique(agent).tolist():
                    rows = wake[agent == a]
                    Z[rows, j] = self.agents[a - 1](self._agent_input(a - 1, pooled, rows))
            if j == 0:  # the shared slot alone: nobody to message, so the consensus is its own head times its weight
                wts = torch.softmax(full.scores[:, :1], -1)  # 1 (NaN only if its score was forced to -inf)
                out, att = wts * self.shared.head(z_shared), z_shared.new_zeros(B, 1, 1)
            else:
                sub = Schedule(
                    full.scores[todo],
                    full.probs[todo],
                    full.available[todo],
                    order[todo, : j + 1],
                    ok[todo, : j + 1],
                    K1,
                )
                out, wts, att = self._consensus(Z[todo, : j + 1], sub, "gather")
            last = j == S - 1
            more = ok[todo, j + 1] if not last else torch.zeros_like(todo, dtype=torch.bool)
            stop = (confidence(out.detach(), spec.task) >= self.threshold) | ~more
            fin = todo[stop]
            logits[fin] = out[stop]
            n_slots[fin] = j + 1
            wts_all[fin, : j + 1] = wts[stop]
            att_all[fin, : j + 1, : j + 1] = att[stop]
            todo = todo[~stop]
            if todo.numel() == 0:
                break
        slot_mask = torch.arange(S, device=mask.device).view(1, S) < n_slots.view(B, 1)
        sched = Schedule(full.scores, full.probs, full.available, torch.where(slot_mask, order, 0), slot_mask, K1)
        return self._output(logits, sched, wts_all, att_all, have & mask, budget)

    def _losses(
        self,
        batch: dict,
        sched: Schedule,
        all_z: torch.Tensor | None,
        pooled: list[torch.Tensor],
        budget: int,
        gating: str,
    ) -> dict[str, torch.Tensor]:
        cfg, task = self.cfg, self.spec.task
        probs = sched.probs
        zero = probs.sum() * 0.0
        woken = sched.active.sum(-1) if gating == "dense" else None  # dense: who messages is not the router's choice
        losses = {
            "agents": zero,
            "route": zero,
            "spec": zero,
            "sparse": cfg.lambda_sparse * expected_cost(probs, self.agent_cost),
            "comm": cfg.lambda_comm * expected_kbits(probs, len(self.comm), cfg.msg_dim, cfg.msg_bits, budget, woken),
        }
        if all_z is None:
            return losses
        target = batch["target"]
        heads = [self.shared.head] + [a.head for a in self.agents]
        own = torch.stack([heads[k](all_z[:, k]) for k in range(self.num_agents)], 1)  # [B, K+1, C]
        B, K1, C = own.shape
        tgt = (target if task == "multiclass" else target.reshape(B, -1)).repeat_interleave(K1, 0)
        per = per_sample_task_loss(own.reshape(B * K1, C), tgt, task).view(B, K1)
        losses["agents"] = cfg.lambda_agents * agents_loss(per, sched.available)
        oracle = route_target(per, sched.available, self.agent_cost, cfg.route_cost, cfg.route_temperature)
        losses["route"] = cfg.lambda_route * route_loss(sched.scores, oracle)
        if cfg.lambda_spec > 0:
            losses["spec"] = cfg.lambda_spec * self._spec_loss(batch, pooled, target)
        return losses

    def _spec_loss(self, batch: dict, pooled: list[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        """Redundancy agents, tested on one randomly kept present modality of their set (the others replaced by
        their missing embedding): the task loss of that single-modality prediction."""
        mask = batch["mask"].to(torch.bool)
        terms = []
        for k, role in enumerate(self.role_specs):
            mods = list(role.modalities)
            if role.kind != "redundant" or len(mods) < 2:
                continue
            present = mask[:, mods]
            rows = torch.nonzero(present.sum(1) >= 2, as_tuple=False).squeeze(1)
            if rows.numel() == 0:
                continue
            pick = torch.multinomial(present[rows].to(torch.float32), 1).squeeze(1)  # one present modality per row
            parts = []
            for i, j in enumerate(mods):
                keep = (pick == i).view(-1, 1)
                miss = self.encode.missing[j].expand(rows.numel(), -1)
                parts.append(torch.where(keep, pooled[j].index_select(0, rows), miss))
            logits = self.agents[k].head(self.agents[k](torch.cat(parts, -1)))
            terms.append(per_sample_task_loss(logits, target.index_select(0, rows), self.spec.task))
        if not terms:
            return pooled[0].sum() * 0.0
        return torch.cat(terms).mean()


@register_model("dain_nocomm")
class DAINNoComm(DAIN):
    """DAIN ablation: no communication rounds (comm_rounds=0, so 0 bits)."""

    @dataclass
    class Config(DAIN.Config):
        comm_rounds: int = 0


@register_model("dain_dense")
class DAINDense(DAIN):
    """DAIN ablation: no sparse scheduling; every available agent is active for every sample."""

    @dataclass
    class Config(DAIN.Config):
        gating: str = "dense"
        lambda_sparse: float = 0.0
        adaptive: str = "off"  # the ablation runs every agent at inference too


@register_model("dain_noroute")
class DAINNoRoute(DAIN):
    """DAIN ablation: no oracle routing target (lambda_route=0); the controller learns from the consensus only."""

    @dataclass
    class Config(DAIN.Config):
        lambda_route: float = 0.0


@register_model("dain_nodeep")
class DAINNoDeep(DAIN):
    """DAIN ablation: no per-agent deep supervision (lambda_agents=0); the route target still reads the agents'
    own losses."""

    @dataclass
    class Config(DAIN.Config):
        lambda_agents: float = 0.0


@register_model("dain_nospec")
class DAINNoSpec(DAIN):
    """DAIN ablation: no specialisation loss (lambda_spec=0)."""

    @dataclass
    class Config(DAIN.Config):
        lambda_spec: float = 0.0


@register_model("dain_tree")
class DAINTree(DAIN):
    """DAIN with the cross-fitted LightGBM agent over the summary features (tree_agent=always; needs LightGBM)."""

    @dataclass
    class Config(DAIN.Config):
        tree_agent: str = "always"
