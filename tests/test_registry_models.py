"""Every registered model and encoder: forward, backward, gradients to all parameters, no NaN, masks respected."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import dain.models  # noqa: F401
from dain.encoders import build_encoder
from dain.models import build_model
from dain.registry import ENCODERS, MODELS
from dain.training.metrics import task_loss
from tests.conftest import tiny_batch, tiny_dataset, tiny_spec

MODEL_NAMES = MODELS.names()
GRAD_MODELS = [n for n in MODEL_NAMES if not getattr(MODELS.get(n), "fit_direct_model", False)]
SPEC_KINDS = ["vector", "sequence"]


def _prep(model: torch.nn.Module) -> None:
    """Open every route so each parameter can receive a gradient (agent budget = all agents)."""
    if hasattr(model, "set_budget") and hasattr(model, "num_agents"):
        model.set_budget(int(model.num_agents))


@pytest.mark.parametrize("kind", SPEC_KINDS)
@pytest.mark.parametrize("name", GRAD_MODELS)
def test_model_forward_backward_all_grads(name: str, kind: str) -> None:
    torch.manual_seed(0)
    spec = tiny_spec(kind)
    fields = {f.name for f in dataclasses.fields(MODELS.get(name).Config)}
    # noisy routing so that every expert receives tokens on tiny random batches
    model = build_model(name, spec, **({"router_noise": 1.0} if "router_noise" in fields else {}))
    model.train()
    _prep(model)
    for seed in range(4):
        batch = tiny_batch(spec, n=32, seed=seed, missing=seed == 1)
        out = model(batch)
        assert out.logits.shape == (32, spec.num_outputs)
        assert torch.isfinite(out.logits).all()
        loss = task_loss(spec.task, out.logits, batch["target"]) + sum(out.losses.values())
        assert torch.isfinite(loss)
        loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: parameters without gradient: {no_grad[:8]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad[:8]}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_respects_modality_mask(name: str) -> None:
    """Values of a modality marked missing must not influence the prediction."""
    torch.manual_seed(0)
    spec = tiny_spec("vector")
    model = build_model(name, spec).eval()
    if getattr(model, "fit_direct_model", False):
        pytest.importorskip("lightgbm")
        model.fit_direct(tiny_dataset(n=120))
    batch = tiny_batch(spec, n=8, seed=3, missing=True)
    with torch.no_grad():
        a = model(batch).logits
        batch["inputs"]["a"][0] = 100.0  # sample 0 has modality a missing
        b = model(batch).logits
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("task", ["binary", "multilabel", "regression"])
def test_models_handle_every_task(task: str) -> None:
    spec = tiny_spec("vector", task)
    for name in ("early_fusion", "late_fusion", "transformer"):
        model = build_model(name, spec)
        batch = tiny_batch(spec, n=8)
        out = model(batch)
        task_loss(task, out.logits, batch["target"]).backward()
        assert out.logits.shape == (8, spec.num_outputs)


@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder_forward_backward(name: str) -> None:
    cls = ENCODERS.get(name)
    kind = cls.kinds[0]
    spec = tiny_spec({"vector": "vector", "sequence": "sequence", "image": "image"}[kind])
    mod = next(m for m in spec.modalities if m.kind == kind)
    if kind == "sequence" and name == "time_aware":
        from dain.data.spec import ModalitySpec

        mod = ModalitySpec("irr", "sequence", (6, 9))
    enc = build_encoder(name, mod, hidden=16)
    x = torch.randn(4, *mod.shape, requires_grad=False)
    steps = torch.ones(4, mod.shape[0], dtype=torch.bool) if kind == "sequence" else None
    out = enc(x, steps)
    assert out.pooled.shape == (4, 16) and out.tokens.shape[0] == 4 and out.tokens.shape[-1] == 16
    assert out.token_mask.shape == out.tokens.shape[:2]
    (out.pooled.sum() + out.tokens.sum()).backward()
    no_grad = [n for n, p in enc.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())


def test_unknown_model_lists_known() -> None:
    from dain.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="known models: .*late_fusion"):
        build_model("nope", tiny_spec())


def test_unknown_model_option_lists_valid() -> None:
    from dain.errors import ConfigError

    with pytest.raises(ConfigError, match="no option.*hiddden.*options:.*hidden"):
        build_model("late_fusion", tiny_spec(), hiddden=3)


def test_gbm_fits_and_round_trips_through_state_dict() -> None:
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch

    data = tiny_dataset(n=150)
    model = build_model("gbm", data.spec, n_estimators=50, early_stopping_rounds=10, min_child_samples=5)
    model.fit_direct(data)
    batch = make_batch(data, data.splits["test"])
    a = model(batch).logits
    assert (a.argmax(-1) == batch["target"]).float().mean() > 0.5  # chance is 1/3
    again = build_model("gbm", data.spec)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again(batch).logits, a)


def test_gbm_multilabel_one_booster_per_label() -> None:
    """Multilabel: one binary booster per label, one logit per label that follows its own label; saved and reloaded
    together, and the size counts every booster."""
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch
    from tests.conftest import tiny_multilabel_dataset

    data = tiny_multilabel_dataset(n=200)
    spec = data.spec
    model = build_model("gbm", spec, n_estimators=50, early_stopping_rounds=10)
    model.fit_direct(data)
    batch = make_batch(data, data.splits["test"])
    logits = model(batch).logits
    assert logits.shape == (len(data.splits["test"]), 3)
    for label in range(3):
        t = batch["target"][:, label].bool()
        assert logits[t, label].mean() > logits[~t, label].mean()
    boosters = model._get_boosters()
    assert len(boosters) == 3
    assert model.size_info()["trees"] == sum(len(b.dump_model()["tree_info"]) for b in boosters)
    again = build_model("gbm", spec)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again(batch).logits, logits)


def test_gbm_min_child_samples_sized_from_rows() -> None:
    """With LightGBM's fixed 20, 40 training rows of 4 classes give a constant prediction (BasicMotions was at
    chance); the default is sized from the training rows."""
    pytest.importorskip("lightgbm")
    from dain.data.spec import make_batch
    from dain.models.gbm import min_child_samples_for

    assert [min_child_samples_for(n) for n in (10, 40, 160, 320, 9590)] == [2, 2, 10, 20, 20]
    data = tiny_dataset(n=60)
    model = build_model("gbm", data.spec, n_estimators=50, early_stopping_rounds=10)
    model.fit_direct(data)
    batch = make_batch(data, data.splits["test"])
    logits = model(batch).logits
    assert logits.std(0).max() > 0  # not a constant prediction
    assert (logits.argmax(-1) == batch["target"]).float().mean() > 0.6  # chance is 1/3


def test_tree_comparisons_hand_checked() -> None:
    """A stump: one comparison + one add per tree; deeper trees weight each leaf's depth by its training count."""
    from dain.models.gbm import tree_comparisons

    class Fake:
        def __init__(self, trees: list[dict]) -> None:
            self.trees = trees

        def dump_model(self) -> dict:
            return {"tree_info": [{"tree_structure": t} for t in self.trees]}

    stump = {"left_child": {"leaf_count": 3}, "right_child": {"leaf_count": 1}}
    deep = {
        "left_child": {"leaf_count": 2},
        "right_child": {
            "internal_count": 6,
            "left_child": {"leaf_count": 3},
            "right_child": {"leaf_count": 3},
        },
    }
    assert tree_comparisons(Fake([stump])) == pytest.approx(2.0)
    # leaves at depth 1 (2 rows) and depth 2 (6 rows): mean depth (2*1 + 6*2) / 8 = 1.75, plus one add
    assert tree_comparisons(Fake([stump, deep])) == pytest.approx(2.0 + 2.75)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (1, 5, 7), (2, 16, 16), (1, 3, 3)])
def test_cnn_fast_pooling_equals_the_torch_pools(shape: tuple[int, ...]) -> None:
    """The CNN's 2x2 max pool and its token copy (in place of an upsampling average pool) give the tokens that
    ``nn.MaxPool2d(2)`` and ``nn.AdaptiveAvgPool2d`` give, bit for bit; in training the pool path itself runs."""
    from dain.data.spec import ModalitySpec
    from dain.encoders.image import MaxPool2x2

    torch.manual_seed(0)
    enc = build_encoder("cnn", ModalitySpec("im", "image", shape), hidden=16).eval()
    x = torch.randn(6, *shape)
    with torch.no_grad():
        out = enc(x)
        f = x
        for block in enc.conv:
            f = torch.nn.functional.max_pool2d(f, 2) if isinstance(block, MaxPool2x2) else block(f)
        ref = enc.norm(enc.proj(enc.pool(f).flatten(2).transpose(1, 2)))
    assert torch.equal(out.tokens, ref) and torch.equal(out.pooled, ref.mean(1))
    enc.train()
    torch.manual_seed(1)
    a = enc(x).tokens
    torch.manual_seed(1)
    f = x
    for block in enc.conv:
        f = torch.nn.functional.max_pool2d(f, 2) if isinstance(block, MaxPool2x2) else block(f)
    torch.testing.assert_close(a, enc.norm(enc.drop(enc.proj(enc.pool(f).flatten(2).transpose(1, 2)))))


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 4, 5, 7), (3, 2, 3, 3)])
def test_fast_max_pool_gradient_equals_max_pool2d_with_ties(shape: tuple[int, ...]) -> None:
    """Ties (ReLU zeros, repeated values) send the whole gradient to the first maximal cell, as max_pool2d does."""
    from dain.encoders.image import MaxPool2x2

    torch.manual_seed(0)
    base = torch.relu(torch.randn(*shape)).round()  # many ties: zeros and repeated integers
    grad = torch.randn(*shape[:2], shape[2] // 2, shape[3] // 2)
    grads = []
    for pool in (MaxPool2x2(), torch.nn.MaxPool2d(2)):
        x = base.clone().requires_grad_(True)
        out = pool(x)
        out.backward(grad)
        grads.append((out.detach(), x.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_multilabel_metrics_include_macro_auroc() -> None:
    """Multilabel AUROC is the mean over labels of each label's binary AUROC (threshold-free, like binary's)."""
    from torchmetrics.functional.classification import binary_auroc

    from dain.training.metrics import compute_metrics

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 2, (50, 3), generator=g)
    logits = torch.randn(50, 3, generator=g) + target
    got = compute_metrics("multilabel", logits, target, 3)
    assert set(got) == {"micro_f1", "macro_f1", "acc", "auroc"}
    per_label = [float(binary_auroc(torch.sigmoid(logits[:, j]), target[:, j])) for j in range(3)]
    assert got["auroc"] == pytest.approx(sum(per_label) / 3, abs=1e-6)


def test_multilabel_macro_auroc_leaves_out_labels_without_both_classes() -> None:
    """A label with no positive (or no negative) row has no AUROC: the macro mean is over the other labels, not
    pulled down by a 0 for it; NaN when no label has both classes."""
    from torchmetrics.functional.classification import binary_auroc

    from dain.training.metrics import compute_metrics

    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 2, (60, 3), generator=g)
    target[:, 1] = 0  # never positive
    logits = torch.randn(60, 3, generator=g) + target
    got = compute_metrics("multilabel", logits, target, 3)["auroc"]
    defined = [float(binary_auroc(torch.sigmoid(logits[:, j]), target[:, j])) for j in (0, 2)]
    assert got == pytest.approx(sum(defined) / 2, abs=1e-6)
    assert math.isnan(compute_metrics("multilabel", logits, torch.ones_like(target), 3)["auroc"])


def test_cnn_depth_follows_encoder_layers() -> None:
    """``encoder_layers`` L gives the CNN L + 1 conv blocks (the default L = 1: two, 32 and 64 channels), as it sets
    the depth of the other encoders."""
    from dain.data.spec import ModalitySpec

    spec = ModalitySpec("im", "image", (3, 32, 32))
    convs = [
        [b.out_channels for b in build_encoder("cnn", spec, hidden=16, layers=n).conv if isinstance(b, torch.nn.Conv2d)]
        for n in (1, 2, 3)
    ]
    assert convs == [[32, 64], [32, 64, 128], [32, 64, 128, 256]]
    tokens = build_encoder("cnn", spec, hidden=16, layers=3).eval()(torch.randn(2, *spec.shape)).tokens
    assert tokens.shape == (2, 16, 16) and torch.isfinite(tokens).all()
