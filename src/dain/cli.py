"""The ``dain`` command line: datasets, fit, test, compare, explain, interactions, bench.

``--json`` prints exactly one JSON document on stdout; progress and logs go to stderr. User errors print one line
(``error: ...``) and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

from dain.errors import ConfigError, DainError, DainWarning


def _emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        sys.stdout.write(json.dumps(_clean(obj), indent=2) + "\n")
    else:
        print(text if text is not None else json.dumps(_clean(obj), indent=2))


def _clean(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _kv(items: list[str] | None) -> dict[str, Any]:
    from dain.config import parse_override

    return dict(parse_override(t) for t in (items or []))


def _parse_lags(text: str | None) -> list[int] | None:
    from dain.validation import parse_lags

    return parse_lags(text)


# ----------------------------------------------------------------------------------------------------------- datasets
def cmd_datasets(args: argparse.Namespace) -> int:
    if args.action == "download":
        from dain.datasets.download import download

        if not args.name:
            raise ConfigError("usage: dain datasets download NAME [--dest DIR]")
        path = download(args.name, args.dest)
        _emit({"downloaded": args.name, "where": str(path)}, args.json, f"{args.name} downloaded to {path}")
        return 0
    from dain.data.listing import dataset_rows, print_datasets

    rows = dataset_rows(args.data_root)
    if args.name:  # `dain datasets list NAME`: that dataset only
        from dain.registry import DATASETS

        DATASETS.get(args.name)  # an unknown name: the error lists the known ones
        rows = [r for r in rows if r["name"] == args.name]
    if args.json:
        _emit({"datasets": rows}, True)
        return 0
    print_datasets(rows)
    return 0


# ---------------------------------------------------------------------------------------------------------------- fit
def _progress_mode(args: argparse.Namespace) -> str:
    """``--quiet``: errors only (warnings silenced too); ``--no-progress``: one line per epoch, never a bar;
    default: a bar when stderr is a terminal, one line per epoch otherwise."""
    if getattr(args, "quiet", False):
        import warnings

        warnings.simplefilter("ignore")
        return "quiet"
    return "lines" if getattr(args, "no_progress", False) else "auto"


def _absolute_if_folder(name: str) -> str:
    """A ``--data`` / ``--data-root`` that is an existing folder, as an absolute path: the saved config.yaml must find
    it again from any working directory (``dain test``, ``compare --robustness``); a registered name as it is."""
    from dain.registry import DATASETS

    path = Path(name).expanduser()
    return str(path.resolve()) if name not in DATASETS and path.is_dir() else name


def _config_from_args(args: argparse.Namespace):
    from dain.config import RunConfig

    cfg = RunConfig.from_yaml(args.config) if args.config else RunConfig()
    if args.data:
        cfg.data.name = _absolute_if_folder(args.data)
    elif not args.config:
        raise ConfigError("--data is required (a dataset name from `dain datasets`, or a folder)")
    if args.model:
        if args.config and args.model != cfg.model.name:
            cfg.model.params = {}
        cfg.model.name = args.model
    if getattr(args, "data_root", None):
        cfg.data.root = _absolute_if_folder(args.data_root)
    if getattr(args, "protocol", None):
        cfg.data.options["protocol"] = args.protocol
    if getattr(args, "split", None) is not None:
        cfg.data.options["split"] = args.split
    cfg.data.options.update(_kv(getattr(args, "option", None)))
    cfg.model.params.update(_kv(getattr(args, "set", None)))
    for flag, key in (
        ("seed", "seed"),
        ("max_epochs", "max_epochs"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("accelerator", "accelerator"),
        ("devices", "devices"),
        ("strategy", "strategy"),
        ("num_nodes", "num_nodes"),
        ("precision", "precision"),
        ("patience", "patience"),
        ("class_weight", "class_weight"),
        ("modality_dropout", "modality_dropout"),
    ):
        v = getattr(args, flag, None)
        if v is not None:
            setattr(cfg.train, key, v)
    if getattr(args, "threads", None) is not None:
        cfg.train.num_threads = args.threads
    if getattr(args, "balanced_batches", False):
        cfg.train.balanced_batches = True
    from dain.models.base import make_config
    from dain.validation import check_train_config

    # unknown model, mistyped --set values, out-of-range training flags: a clear error before any data is read
    make_config(cfg.model.name, cfg.model.params)
    check_train_config(cfg.train)
    return cfg


def cmd_fit(args: argparse.Namespace) -> int:
    from dain.training.runner import fit_run

    cfg = _config_from_args(args)
    progress = _progress_mode(args)
    if progress != "quiet":
        _log(f"fit {cfg.model.name} on {cfg.data.name} (seed {cfg.train.seed})")
    with contextlib.redirect_stdout(sys.stderr):
        res = fit_run(cfg, args.out, resume=args.resume, progress=progress)
    if not res:  # a non-zero DDP rank: rank 0 evaluates and reports
        return 0
    text = "test: " + ", ".join(f"{k}={v:.4f}" for k, v in res["test"].items()) + f"\nrun directory: {res['run_dir']}"
    _emit(res, args.json, text)
    return 0


# --------------------------------------------------------------------------------------------------------------- test
def cmd_test(args: argparse.Namespace) -> int:
    from dain.training.runner import test_run

    with contextlib.redirect_stdout(sys.stderr):
        out = test_run(
            args.run,
            args.split,
            drop=args.drop or (),
            missing_rate=args.missing_rate,
            seed=args.missing_seed,
            budget=args.budget,
            adaptive=args.adaptive,
            data_name=args.data,
            data_options=_kv(args.option),
            data_root=args.data_root,
        )
    text = f"{args.split}: " + ", ".join(f"{k}={v:.4f}" for k, v in out[args.split].items())
    if out["missing"]:
        removed = ", ".join(f"{n} {100 * f:.1f}%" for n, f in out["missing"]["removed_fraction"].items() if f)
        text = f"missing ({out['missing']['condition']}): removed {removed or 'nothing'}\n" + text
    _emit(out, args.json, text)
    return 0


# ------------------------------------------------------------------------------------------------------------ compare
def cmd_compare(args: argparse.Namespace) -> int:
    import time

    from dain.training.compare import compare

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models:
        raise ConfigError("--models needs a comma-separated list of model names")
    from dain.registry import MODELS

    for m in models:
        MODELS.get(m)
    from dain.config import RunConfig
    from dain.models.base import make_config
    from dain.validation import ensure_creatable

    if args.seeds < 1 and args.seed_list is None:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    if args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (parallel fit processes), got {args.jobs}")
    try:
        seed_list = None if args.seed_list is None else [int(s) for s in args.seed_list.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seed-list must be comma-separated integers, got {args.seed_list!r}") from None
    if seed_list is not None and not seed_list:
        raise ConfigError("--seed-list names no seed")
    given = [
        f for f, v in (("--robustness-drop", args.robustness_drop), ("--robustness-rates", args.robustness_rates)) if v
    ]
    if given and not args.robustness:
        flags = " and ".join(given)
        raise ConfigError(f"without --robustness, {flags} would be ignored: add --robustness, or drop {flags}")

    # the --config file's model keeps its params in the comparison; --set applies to every model
    from_file = RunConfig.from_yaml(args.config).model if args.config else None
    args.model = models[0]
    cfg = _config_from_args(args)
    if args.jobs > 1 and cfg.train.num_threads == 0:
        import os

        cfg.train.num_threads = max(1, (os.cpu_count() or 1) // args.jobs)
    seeds = list(range(args.seeds)) if seed_list is None else seed_list
    out = Path(args.out or f"runs/compare-{Path(cfg.data.name).name}-{time.strftime('%Y%m%d-%H%M%S')}")
    ensure_creatable(out, "--out")
    params = {m: {} for m in models}
    if from_file is not None and from_file.name in params:
        params[from_file.name] = dict(from_file.params)
    for m in models:
        params[m].update(_kv(args.set))
        make_config(m, params[m])  # every model's --set values typed before the first fit
    splits = list(range(1, 6)) if args.all_splits else [None]
    log = None if _progress_mode(args) == "quiet" else _log
    robustness = _robustness_options(args, cfg) if args.robustness else None
    with contextlib.redirect_stdout(sys.stderr):
        summary = compare(
            cfg,
            models,
            seeds,
            out,
            jobs=args.jobs,
            model_params=params,
            log=log,
            ensemble=args.ensemble,
            splits=splits,
            frontier=not args.no_frontier,
            robustness=robustness,
            published=args.published,
        )
    text = Path(summary["table"]).read_text()
    _emit(summary, args.json, text)
    return 0


def _robustness_options(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """``--robustness-rates`` and ``--robustness-drop`` checked against the dataset before any model is trained."""
    from dain.validation import parse_rates

    opts: dict[str, Any] = {}
    if args.robustness_rates is not None:
        opts["rates"] = parse_rates(args.robustness_rates, "--robustness-rates")
    if args.robustness_drop:
        from dain.data.missing import Missingness, check_missingness, parse_drop
        from dain.data.registry_api import load_dataset

        with contextlib.redirect_stdout(sys.stderr):
            data = load_dataset(cfg.data.name, root=cfg.data.root, seed=cfg.train.seed, **cfg.data.options)
        drops = [parse_drop(d) for d in args.robustness_drop]
        for d in drops:
            check_missingness(data.spec.modality_names, Missingness(drop=d), "--robustness-drop")
        opts["extra_drops"] = drops
    return opts


# ------------------------------------------------------------------------------------------- explain / interactions
def cmd_explain(args: argparse.Namespace) -> int:
    from dain.explain import explain_run
    from dain.validation import ensure_creatable

    if args.out:
        ensure_creatable(args.out, "--out")
    with contextlib.redirect_stdout(sys.stderr):
        from dain.data.missing import Missingness, parse_drop

        missing = Missingness(parse_drop(args.drop), args.missing_rate, args.missing_seed)
        res = explain_run(
            args.run, args.out, args.budget, args.adaptive, occlusion=not args.no_occlusion, missing=missing
        )
    _emit(res, args.json, "wrote " + ", ".join(res["files"]))
    return 0


def cmd_interactions(args: argparse.Namespace) -> int:
    import time

    from dain.data.registry_api import load_dataset
    from dain.interactions import estimate_pairs, format_table
    from dain.validation import check_lags, ensure_parent

    opts = _kv(args.option)
    word = (args.lags or "").strip().lower()
    auto = word in ("auto", "static")
    lags: Any = word if auto else _parse_lags(args.lags)
    if args.plot:
        ensure_parent(args.plot, "--plot")
    data = load_dataset(args.data, root=args.data_root, seed=args.seed, **opts)
    mods = [m.strip() for m in args.modalities.split(",")] if args.modalities else None
    if mods:
        unknown = [m for m in mods if m not in data.spec.modality_names]
        if unknown:
            raise ConfigError(f"{args.data} has no modality {unknown}; modalities: {data.spec.modality_names}")
    if not auto:
        check_lags(lags, data, mods)
    # read on a split the estimator's networks were not trained on (they are trained on train), unless told otherwise
    fit_split = "train" if args.split != "train" else None
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        results = estimate_pairs(
            data,
            modalities=mods,
            lags=lags,
            estimator=args.estimator,
            split=args.split,
            fit_split=fit_split,
            seed=args.seed,
            progress=sys.stderr.isatty(),
        )
    if not results:
        raise DainError(
            f"no modality pair of {args.data} has 10 rows with both modalities on the {args.split} split; "
            "try --split train"
        )
    out = {
        "dataset": args.data,
        "estimator": args.estimator,
        "unit": "bits",
        "split": args.split,
        "fit_split": fit_split or args.split,
        "lags": lags,
        "seconds": time.perf_counter() - t0,
        "results": results,
    }
    if args.plot:
        from dain.interactions.plot import plot_interactions

        plot_interactions(results, args.plot, title=f"{args.data}: interactions read on the {args.split} split")
        out["plot"] = str(args.plot)
    _emit(out, args.json, format_table(results, args.split))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from dain.bench import run_bench

    with contextlib.redirect_stdout(sys.stderr):
        res = run_bench(
            args.model,
            args.data,
            device=args.device,
            batch_size=args.batch_size,
            data_root=args.data_root,
            params=_kv(args.set),
            run=args.run,
        )
    text = "\n".join(f"{k}: {v}" for k, v in res.items())
    _emit(res, args.json, text)
    return 0


# ------------------------------------------------------------------------------------------------------------ parser
def _add_train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset name (see `dain datasets`) or a bring-your-own folder")
    p.add_argument("--data-root", help="folder holding the dataset folders (default: $DAIN_DATA, ../shared/data)")
    p.add_argument("--config", help="YAML run config (e.g. a previous run's config.yaml)")
    p.add_argument("--protocol", help="split protocol of the dataset (e.g. tmc for mfeat, raindrop for physionet2012)")
    p.add_argument("--split", type=int, help="split number of the protocol (e.g. 1..5 for raindrop)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="dataset loader option (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="model config field (repeatable)")
    p.add_argument("--max-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--patience", type=int)
    p.add_argument("--class-weight", choices=["none", "balanced"])
    p.add_argument("--balanced-batches", action="store_true", help="upsample minority classes in training batches")
    p.add_argument(
        "--modality-dropout",
        type=float,
        metavar="P",
        help="train with each modality of each sample removed with probability P, drawn every step",
    )
    p.add_argument("--accelerator", help="cpu | gpu | auto")
    p.add_argument("--devices", type=int)
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp")
    p.add_argument("--num-nodes", type=int)
    p.add_argument("--precision", help="e.g. 32-true, bf16-mixed")
    p.add_argument("--threads", type=int, help="torch CPU threads per run (compare --jobs N: default cores/N)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument(
        "--no-progress", action="store_true", help="no live bar: one line per epoch (the default off a terminal)"
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on stderr but errors")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dain", description="Dynamic, interaction-aware multimodal fusion.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("datasets", help="list datasets, where their files were found; download open ones")
    d.add_argument("action", nargs="?", choices=["list", "download"], default="list")
    d.add_argument("name", nargs="?", help="list: show this dataset only; download: the dataset to download")
    d.add_argument("--dest", help="download destination (default: the first data root)")
    d.add_argument("--data-root")
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_datasets)

    f = sub.add_parser("fit", help="train a model; writes a run directory")
    f.add_argument("--model", help="model name (see the registry: early_fusion, late_fusion, transformer, dain, ...)")
    f.add_argument("--seed", type=int)
    f.add_argument("--out", help="run directory (default runs/<data>-<model>-s<seed>-<time>)")
    f.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    _add_train_flags(f)
    f.set_defaults(fn=cmd_fit)

    t = sub.add_parser("test", help="evaluate a trained run (optionally with a lower agent budget)")
    t.add_argument("--run", required=True)
    t.add_argument("--data", help="evaluate on another dataset with the same modalities")
    t.add_argument("--data-root")
    t.add_argument("--option", action="append", metavar="KEY=VALUE")
    t.add_argument("--split", default="test", choices=["train", "val", "test"])
    t.add_argument(
        "--budget",
        type=int,
        help="routed agents per sample besides the always-on shared agent (dain models): 0 = the shared agent alone "
        "... K = every routed agent; above the trained budget (active_agents) is allowed but is an extrapolation",
    )
    t.add_argument(
        "--adaptive",
        type=float,
        metavar="CONF",
        help="confidence cascade (dain models): routed agents wake only where the shared agent's confidence < CONF",
    )
    t.add_argument("--drop", metavar="NAME[,NAME]", help="remove these modalities from every sample (as if missing)")
    t.add_argument(
        "--missing-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="remove each modality of each sample with probability P (never a sample's last one)",
    )
    t.add_argument(
        "--missing-seed", "--seed", dest="missing_seed", type=int, default=0, help="seed of the --missing-rate draw"
    )
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=cmd_test)

    c = sub.add_parser("compare", help="several models x seeds on identical splits: mean ± std table")
    c.add_argument("--models", required=True, help="comma-separated model names")
    c.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    c.add_argument("--seed-list", help="explicit comma-separated seeds")
    c.add_argument(
        "--ensemble",
        action="store_true",
        help="also score each model's seed ensemble (mean predicted probability over its seeds) as a row model×N",
    )
    c.add_argument("--out", help="output folder (compare.json, compare.md, one run dir per model x seed)")
    c.add_argument("--jobs", type=int, default=1, help="parallel fit processes")
    c.add_argument("--all-splits", action="store_true", help="run every split of the protocol (raindrop: 1..5)")
    c.add_argument("--published", action="store_true", help="print published results of the protocol beside ours")
    _add_train_flags(c)
    c.add_argument(
        "--no-frontier",
        action="store_true",
        help="skip the side-by-side latency, DAIN budget curves and frontier.png (accuracy vs FLOPs)",
    )
    c.add_argument(
        "--robustness",
        action="store_true",
        help="re-test every run with each modality dropped and at missing rates 0.1/0.3/0.5: robustness.md/.png",
    )
    c.add_argument(
        "--robustness-drop",
        action="append",
        metavar="NAME[,NAME]",
        help="with --robustness: also drop this set of modalities together (repeatable)",
    )
    c.add_argument("--robustness-rates", help="with --robustness: missing rates (default 0.1,0.3,0.5)")
    c.set_defaults(fn=cmd_compare)

    e = sub.add_parser(
        "explain", help="agent activation, collaboration graph, consensus weights, occlusion (PNG + HTML)"
    )
    e.add_argument("--run", required=True)
    e.add_argument("--out")
    e.add_argument("--budget", type=int, help="dain: explain the test split re-run with K routed agents per sample")
    e.add_argument(
        "--adaptive", type=float, metavar="CONF", help="dain: explain the test split re-run with the confidence cascade"
    )
    e.add_argument(
        "--no-occlusion",
        action="store_true",
        help="skip re-running the test split without each modality / agent (needs no data then)",
    )
    e.add_argument("--drop", metavar="NAME[,NAME]", help="explain the test split re-run with these modalities removed")
    e.add_argument(
        "--missing-rate", type=float, default=0.0, metavar="P", help="... or each one removed with probability P"
    )
    e.add_argument("--missing-seed", "--seed", dest="missing_seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_explain)

    i = sub.add_parser("interactions", help="redundancy / uniqueness / synergy between modality pairs (bits)")
    i.add_argument("--data", required=True)
    i.add_argument("--data-root")
    i.add_argument("--option", action="append", metavar="KEY=VALUE")
    i.add_argument("--modalities", help="comma-separated subset (default: every pair)")
    i.add_argument("--pairs", dest="modalities", help=argparse.SUPPRESS)
    i.add_argument(
        "--lags",
        help="0..L or a comma list (sequence modalities), or auto: R/U/S per window of the sequence (8 windows, one "
        "shared BATCH model, permutation null, shrinkage) on sequence pairs, one static estimate elsewhere; or "
        "static: that static estimate (same settings, same null) for every pair",
    )
    i.add_argument("--estimator", default="auto", choices=["auto", "exact", "batch"])
    i.add_argument("--seed", type=int, default=0)
    i.add_argument(
        "--split",
        default="val",
        choices=["train", "val", "test"],
        help="rows to read the estimate on (default val; BATCH's networks are trained on train, or on 80%% of train "
        "with --split train)",
    )
    i.add_argument("--plot", help="write a PNG of R/U/S per pair and lag (per window with --lags auto)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(fn=cmd_interactions)

    b = sub.add_parser("bench", help="FLOPs, latency, throughput, active agents, bits of a model")
    b.add_argument("--model", help="model name (not with --run: the run's)")
    b.add_argument("--data", help="dataset name or folder (not with --run: the run's)")
    b.add_argument("--data-root")
    b.add_argument("--run", help="benchmark a trained run's weights on its dataset (routing of a trained controller)")
    b.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    b.add_argument("--batch-size", type=int, default=256)
    b.add_argument("--set", action="append", metavar="KEY=VALUE", help="model config field (not with --run)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(fn=cmd_bench)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """dain's own warnings as one ``warning:`` line on stderr; every other warning as Python shows it."""
    if issubclass(category, DainWarning):
        print("warning: " + " ".join(str(message).split()), file=sys.stderr, flush=True)
    else:
        _PY_SHOWWARNING(message, category, filename, lineno, file, line)


_PY_SHOWWARNING = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("default", DainWarning)
        warnings.showwarning = _show_warning
        try:
            return int(args.fn(args) or 0)
        except DainError as e:
            print("error: " + " ".join(str(e).split()), file=sys.stderr)  # always one line
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
