"""DAIN: Dynamic Agent-based Interaction Network (our design; the paper's text beyond its abstract is not
public).

Pipeline per batch (see docs/dain.md):

1. per-modality encoders -> tokens ``[B, L_m, d]`` + pooled ``[B, d]`` (learned embedding for missing
   modalities);
2. a meta-controller scores the K role-specialised interaction agents from ``[pooled; mask]`` and activates a
   sparse per-sample subset (``topk``, adaptive ``threshold`` or ``dense``) under a test-time-adjustable
   budget;
3. active agents (and only those: gather/index_copy dispatch) cross-attend over the tokens their role lets
   them read;
4. R rounds of compressed (r-dim, b-bit) attention-weighted messaging among the active agents of each sample;
5. consensus: controller-softmax-weighted sum of the active agents' predictions;
6. losses: specialisation (I2MoE-style perturbation tests on active agents only), sparse activation, expected
   bits, load balance and consensus, each returned already weighted."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from dain.data.spec import DatasetSpec
from dain.encoders import ModalityEncoders
from dain.models.base import BaseModelConfig, ModelOutput, register_model
from dain.models.dain_parts.agents import AgentRole, InteractionAgent, default_roles, parse_role
from dain.models.dain_parts.communication import CommRound, count_bits
from dain.models.dain_parts.controller import GATINGS, MetaController, Schedule, schedule
from dain.models.dain_parts.dispatch import dispatch_rows, dispatch_slots, resolve_dispatch
from dain.models.dain_parts.objectives import (
    balance_loss,
    consensus_loss,
    redundant_term,
    soft_count,
    synergy_term,
    unique_term,
)

LOSS_NAMES = ("spec", "sparse", "comm", "balance", "consensus")


@register_model("dain")
class DAIN(nn.Module):
    """Sparse, communicating, role-specialised interaction agents scheduled by a meta-controller."""

    @dataclass
    class Config(BaseModelConfig):
        encoders: dict[str, str] = field(default_factory=dict)
        num_agents: int = 0  # 0 = auto: M unique + redundant:all + synergy:all + 2 free (capped at 24)
        # explicit roles ("unique:fou", "synergy:fou+pix", "free", ...); when given they define K
        roles: tuple[str, ...] = ()
        # budget k: cap on active agents per sample; set_budget() changes it at test time
        active_agents: int = 3
        gating: str = "topk"  # topk | threshold (adaptive top-p, <= k) | dense (all available agents)
        threshold: float = 0.5  # threshold gating: controller probability mass to cover
        router_noise: float = 0.3  # std of Gaussian noise on the scores used for *selection*, training only
        msg_dim: int = 8  # r
        msg_bits: int = 8  # b (0 = float32 messages)
        comm_rounds: int = 2  # R
        agent_layers: int = 1
        agent_queries: int = 1
        heads: int = 4
        dispatch: str = "auto"  # auto | dense | gather
        spec_margin: float = 1.0
        lambda_spec: float = 0.1
        lambda_sparse: float = 0.01
        lambda_comm: float = 0.01  # per kilobit per sample
        lambda_balance: float = 0.01
        lambda_consensus: float = 0.1

    def __init__(self, spec: DatasetSpec, cfg: Config) -> None:
        super().__init__()
        if cfg.gating not in GATINGS:
            raise ValueError(f"dain: gating must be one of {GATINGS}, got {cfg.gating!r}")
        resolve_dispatch(cfg.dispatch, 1)
        self.spec, self.cfg = spec, cfg
        d, M = cfg.hidden, spec.num_modalities
        names = spec.modality_names
        roles = list(cfg.roles) if cfg.roles else default_roles(names, cfg.num_agents)
        if cfg.roles and cfg.num_agents and cfg.num_agents != len(roles):
            raise ValueError(f"dain: num_agents={cfg.num_agents} but {len(roles)} roles were given")
        self.role_specs: list[AgentRole] = [parse_role(r, names) for r in roles]
        self.roles: list[str] = [r.text for r in self.role_specs]
        self.agent_names: list[str] = [f"a{i}:{r}" for i, r in enumerate(self.roles)]
        self.num_agents = K = len(self.roles)
        self.budget: int = max(1, min(int(cfg.active_agents), K))

        self.encode = ModalityEncoders(spec, d, cfg.dropout, cfg.encoder_layers, cfg.encoders)
        self.modality_emb = nn.Parameter(torch.randn(M, d) * 0.02)
        self.controller = MetaController(d, M, K, cfg.dropout)
        self.agents = nn.ModuleList(
            [
                InteractionAgent(d, spec.num_outputs, cfg.heads, cfg.agent_layers, cfg.agent_queries, cfg.dropout)
                for _ in range(K)
            ]
        )
        self.comm = nn.ModuleList([CommRound(d, cfg.msg_dim, cfg.msg_bits) for _ in range(cfg.comm_rounds)])
        read = torch.zeros(K, M)
        for k, r in enumerate(self.role_specs):
            read[k, list(r.modalities)] = 1.0
        self.register_buffer("read_matrix", read, persistent=False)

    # ------------------------------------------------------------------ public API
    def set_budget(self, k: int | None) -> None:
        """Cap the number of active agents per sample (test-time, no retraining). ``None`` restores the
        default."""
        self.budget = max(1, min(int(self.cfg.active_agents if k is None else k), self.num_agents))

    def forward(self, batch: dict, budget: int | None = None) -> ModelOutput:
        return self._run(batch, budget, self.cfg.gating, self.cfg.dispatch)

    def flops_per_sample(self, batch: dict, dense: bool = False) -> float:
        """FLOPs per sample of an eval forward: sparse gather execution, or (``dense=True``) all agents active
        on all samples (what a non-sparse agent network costs)."""
        from dain.flops import count_flops

        if dense:
            return count_flops(self, batch, lambda b: self._run(b, self.num_agents, "dense", "dense"))
        return count_flops(self, batch, lambda b: self._run(b, None, self.cfg.gating, "gather"))

    # ------------------------------------------------------------------ internals
    def _agent_inputs(
        self,
        k: int,
        rows: torch.Tensor | None,
        toks: list[torch.Tensor],
        keep: list[torch.Tensor],
        tmask: list[torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mods = self.role_specs[k].modalities

        def sel(t: torch.Tensor) -> torch.Tensor:
            return t if rows is None else t.index_select(0, rows)

        x = torch.cat([sel(toks[j]) for j in mods], 1)
        m = torch.cat([sel(keep[j]) for j in mods], 1)
        # rows with none of the agent's modalities (only possible when the agent is inactive for them, or
        # when a sample has no modality at all) attend to the learned missing embeddings instead of nothing
        fallback = torch.cat([sel(tmask[j]) for j in mods], 1)
        m = torch.where(m.any(1, keepdim=True), m, fallback)
        return x, m

    def _run(self, batch: dict, budget: int | None, gating: str, dispatch: str) -> ModelOutput:
        cfg = self.cfg
        names = self.spec.modality_names
        mask: torch.Tensor = batch["mask"].to(torch.bool)
        B, d = mask.shape[0], cfg.hidden
        enc = self.encode(batch)
        toks = [enc[m].tokens + self.modality_emb[j] for j, m in enumerate(names)]
        tmask = [enc[m].token_mask for m in names]
        keep = [enc[m].token_mask & mask[:, j : j + 1] for j, m in enumerate(names)]

        available = (mask.to(self.read_matrix.dtype) @ self.read_matrix.T) > 0
        available = available | ~available.any(1, keepdim=True)  # a sample with no modality: every agent may run
        scores = self.controller([enc[m].pooled for m in names], mask)
        noise = cfg.router_noise if self.training else 0.0
        sched = schedule(scores, available, gating, self.budget if budget is None else budget, cfg.threshold, noise)
        mode = resolve_dispatch(dispatch, B)
        like = toks[0]

        def run_agent(k: int, rows: torch.Tensor | None) -> torch.Tensor:
            return self.agents[k](*self._agent_inputs(k, rows, toks, keep, tmask))

        z0 = dispatch_rows(run_agent, sched, B, mode, d, like)  # [B, S, d]
        z = z0
        S = sched.slot_mask.shape[1]
        att = z.new_zeros(B, S, S)
        for rnd in self.comm:
            z, att = rnd(z, sched.slot_mask)
        C = self.spec.num_outputs
        agent_logits = dispatch_slots(lambda k, x: self.agents[k].head(x), z, sched, mode, C)
        slot_scores = torch.gather(sched.scores, 1, sched.slot_agent).masked_fill(~sched.slot_mask, float("-inf"))
        w = torch.softmax(slot_scores, dim=-1)  # masked softmax over active agents
        w = torch.where(sched.slot_mask, w, torch.zeros_like(w))
        logits = (w.unsqueeze(-1) * agent_logits).sum(1)

        bits = count_bits(sched.slot_mask, len(self.comm), cfg.msg_dim, cfg.msg_bits)
        active = sched.active
        n_active = sched.slot_mask.sum(1)
        losses = self._losses(sched, active, n_active, agent_logits, logits, w, z0, toks, keep, tmask, mode)
        # messages[b, sender, receiver] = weight the receiver gave the sender's message in the last round
        sender_recv = att.transpose(1, 2)
        msgs = sched.to_agents(sched.to_agents(sender_recv).transpose(1, 2)).transpose(1, 2)
        routing = {
            "gates": sched.probs.detach(),
            "scores": sched.scores.detach(),
            "available": sched.available,
            "active": active,
            "consensus_weights": sched.to_agents(w).detach(),
            "messages": msgs.detach(),
            "bits": bits,
        }
        stats = {"active_agents": n_active.to(torch.float32).mean(), "comm_bits": bits.mean()}
        return ModelOutput(logits, losses, routing, stats)

    def _losses(
        self,
        sched: Schedule,
        active: torch.Tensor,
        n_active: torch.Tensor,
        agent_logits: torch.Tensor,
        logits: torch.Tensor,
        w: torch.Tensor,
        z0: torch.Tensor,
        toks: list[torch.Tensor],
        keep: list[torch.Tensor],
        tmask: list[torch.Tensor],
        mode: str,
    ) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        zero = logits.sum() * 0.0
        soft = soft_count(sched.scores)
        per_msg = cfg.msg_dim * (cfg.msg_bits if cfg.msg_bits > 0 else 32)
        exp_kbits = len(self.comm) * per_msg * soft * (n_active >= 2).to(soft.dtype) / 1000.0
        losses = {
            "spec": zero,
            "sparse": cfg.lambda_sparse * soft.mean(),
            "comm": cfg.lambda_comm * exp_kbits.mean(),
            "balance": cfg.lambda_balance * balance_loss(active, sched.probs),
            "consensus": cfg.lambda_consensus * consensus_loss(agent_logits, logits, w, self.spec.task),
        }
        if self.training and cfg.lambda_spec > 0:
            losses["spec"] = cfg.lambda_spec * self._spec_loss(sched, z0, toks, keep, tmask)
        return losses

    def _spec_loss(
        self,
        sched: Schedule,
        z0: torch.Tensor,
        toks: list[torch.Tensor],
        keep: list[torch.Tensor],
        tmask: list[torch.Tensor],
    ) -> torch.Tensor:
        """Role tests on the active (sample, agent) pairs only: perturb each readable, present modality
        (replace its tokens by the learned missing embedding) and re-run just that agent. Cost per active
        pair: 1 agent pass for ``unique``, ``|readable & present|`` for redundant/synergy (pairs with < 2
        present skipped), 0 for free."""
        rows, pos = sched.groups()
        z0f = z0.reshape(-1, z0.shape[-1])
        terms: list[torch.Tensor] = []
        for k, role in enumerate(self.role_specs):
            if role.kind == "free" or rows[k].numel() == 0:
                continue
            r_k = rows[k]
            anchor = z0f.index_select(0, pos[k])
            mods = role.modalities
            x, m = self._agent_inputs(k, r_k, toks, keep, tmask)
            present = torch.stack([keep[j].index_select(0, r_k).any(1) for j in mods], 1)  # [n, |mods|]
            xs, ms, anchors, sel_all = [], [], [], []
            offset = 0
            for i, j in enumerate(mods):
                L = toks[j].shape[1]
                ok = present[:, i] if role.kind == "unique" else present[:, i] & (present.sum(1) >= 2)
                sel = torch.nonzero(ok, as_tuple=False).squeeze(1)
                if sel.numel():
                    xp = x.index_select(0, sel).clone()
                    xp[:, offset : offset + L] = self.encode.missing[j] + self.modality_emb[j]
                    mp = m.index_select(0, sel).clone()
                    mp[:, offset : offset + L] = tmask[j].index_select(0, r_k.index_select(0, sel))
                    xs.append(xp)
                    ms.append(mp)
                    anchors.append(anchor.index_select(0, sel))
                offset += L
                sel_all.append(sel)
            if not xs:
                continue
            zp = self.agents[k](torch.cat(xs), torch.cat(ms))
            za = torch.cat(anchors)
            if role.kind == "unique":
                terms.append(unique_term(za, zp, self.cfg.spec_margin))
            elif role.kind == "redundant":
                terms.append(redundant_term(za, zp))
            else:
                terms.append(synergy_term(za, zp))
        if not terms:
            return z0.sum() * 0.0
        return torch.cat(terms).mean()


@register_model("dain_nocomm")
class DAINNoComm(DAIN):
    """DAIN ablation: no communication rounds (comm_rounds=0, so 0 bits)."""

    @dataclass
    class Config(DAIN.Config):
        comm_rounds: int = 0


@register_model("dain_dense")
class DAINDense(DAIN):
    """DAIN ablation: no sparse scheduling; every available agent is active and the consensus weights are the
    controller softmax over all of them (lambda_sparse=0)."""

    @dataclass
    class Config(DAIN.Config):
        gating: str = "dense"
        lambda_sparse: float = 0.0


@register_model("dain_nospec")
class DAINNoSpec(DAIN):
    """DAIN ablation: no specialisation loss (lambda_spec=0)."""

    @dataclass
    class Config(DAIN.Config):
        lambda_spec: float = 0.0
