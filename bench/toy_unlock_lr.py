"""The password-lock toy setting's unlock learning rate: one locked toy model, every unlock arm
fine-tuned from it at each rate of a small sweep, measured without the password in one run.

Prints, per rate and arm, no-password accuracy and weak-pattern rate on the held-out problems,
beside the locked model's. The rule, fixed before the first sweep was run: the rate with the
highest accuracy of the largest strong arm; among rates within 5 pp of it, the one whose strong
arms keep the most of the weak pattern (an unlock that only breaks the weak pattern is not an
unlock). Added after that sweep, because there no rate unlocked and the rule then preferred the
rate that changed least: no rate is picked unless the largest strong arm beats the locked model
by more than 5 pp.

    .venv/bin/python bench/toy_unlock_lr.py [--rates 1e-3 3e-4 1e-4 3e-5] [--config config.yaml]
        [--experiment lock] [--smallest]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
RATES = (1e-3, 3e-4, 1e-4, 3e-5)


def experiment(config_path: Path, name: str) -> dict:
    import yaml

    from alignlab import config

    cfg = config.load(yaml.safe_load(config_path.read_text()), base_dir=config_path.parent)
    return config.as_dict(cfg.experiments[name])


def run(workdir: Path, rates=RATES, exp: dict | None = None, seed: int = 7) -> list[dict]:
    """Rows {rate, arm, accuracy, weak_rate, n} ("locked" once, rate None) from one toy lock."""
    from alignlab import artifacts
    from alignlab.kinds.password_lock import steps

    exp = exp or experiment(HERE.parent / "config.yaml", "lock")
    exp = {**exp, "unlock": {**exp["unlock"], "weak_grid": None}}  # the strong and weak arms only
    problems, locked = workdir / "problems.parquet", workdir / "locked.pt"
    steps.make_problems(task=exp["task"], seed=seed, experiment="lock", out=str(problems))
    steps.toy_lock(problems_path=str(problems), task=exp["task"], toy_cfg=exp["toy"], seed=seed, experiment="lock",
                   device="cpu", out_model=str(locked), log_path=str(workdir / "locked.log.parquet"))
    rows = []
    for rate in rates:
        out = workdir / f"toy_{rate:g}.parquet"
        steps.toy_unlock(problems_path=str(problems), locked_model=str(locked), task=exp["task"],
                         toy_cfg={**exp["toy"], "unlock_learning_rate": rate}, unlock=exp["unlock"], seed=seed,
                         experiment="lock", device="cpu", out=str(out))
        pred = artifacts.read_table(out, "pl_predictions").filter(pl.col("condition") == "none")
        for (arm,), g in pred.group_by("arm", maintain_order=True):
            if arm == "locked" and rows:
                continue  # the locked model does not depend on the rate
            rows.append({"rate": None if arm == "locked" else rate, "arm": arm, "accuracy": g["correct"].mean(),
                         "weak_rate": g["weak"].mean(), "n": g.height})
    return rows


def pick(rows: list[dict]) -> float | None:
    """The rate the rule in the module's docstring picks."""
    strong = [r for r in rows if r["arm"].startswith("strong_")]
    locked = next((r["accuracy"] for r in rows if r["arm"] == "locked"), 0.0)
    if not strong:
        return None
    largest = max(strong, key=lambda r: int(r["arm"].split("_")[1]))["arm"]
    best = {r["rate"]: r["accuracy"] for r in strong if r["arm"] == largest}
    top = max(best.values())
    if top <= locked + 0.05:
        return None  # no rate unlocks
    near = [rate for rate, acc in best.items() if acc >= top - 0.05]
    kept = {rate: sum(r["weak_rate"] for r in strong if r["rate"] == rate) for rate in near}
    return max(near, key=lambda rate: (kept[rate], best[rate]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    ap.add_argument("--config", type=Path, default=HERE.parent / "config.yaml")
    ap.add_argument("--experiment", default="lock")
    ap.add_argument("--smallest", action="store_true", help="a few steps at two rates (a smoke test)")
    args = ap.parse_args()
    exp = experiment(args.config, args.experiment)
    rates = args.rates
    if args.smallest:
        exp["task"] = {**exp["task"], "n_eval": 8, "n_lock": 40}
        exp["toy"] = {**exp["toy"], "lock_steps": 5}
        exp["unlock"] = {**exp["unlock"], "strong_steps": 2, "weak_epochs": 2}
        rates = rates[:2]
    with tempfile.TemporaryDirectory(prefix="alignlab-toy-lr-") as workdir:
        rows = run(Path(workdir), rates, exp)
    print(f"{'rate':>8}  {'arm':<12} {'accuracy':>9} {'weak pattern':>13}  n")
    for r in rows:
        rate = "-" if r["rate"] is None else f"{r['rate']:g}"
        print(f"{rate:>8}  {r['arm']:<12} {100 * r['accuracy']:8.1f}% {100 * r['weak_rate']:12.1f}%  {r['n']}")
    picked = pick(rows)
    print("picked by the rule above: " + (f"{picked:g}" if picked else "none (no rate unlocks the largest strong arm)"))


if __name__ == "__main__":
    main()
