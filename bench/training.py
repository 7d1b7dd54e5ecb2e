"""Benchmark: LoRA training, plain fp32 with one padded row per document against the fast path
(packed rows, bf16 autocast), same documents, seed, lr, optimizer steps and tokens per step.

Workload: the alignment-faking synthetic documents (template generator, the default config's
universe, persona and finetune.documents settings: rank 16, lr 3e-4, max_length 384, 1 epoch)
on the packaged SmolLM2-135M-Instruct; --docs documents (~240 tokens each), so every setting
trains on the same tokens. The baseline takes 8 documents per step (the recipe before packing);
batch_size counts rows, so the packed settings take as many full rows as hold the tokens of 8
documents (5, the config's batch_size): the same optimizer steps, hence comparable losses.
Prints, per setting, tokens, steps, seconds (training loop only: model loading and saving are
not timed), tokens/s overall and the median of single steps, the training loss (mean of the
last 3 steps), the loss on held-out documents after training (fp32, one document at a time: the
same measurement for every setting) and the ratio to the baseline of median step tokens/s (a
burst of other load on a shared machine moves a run's overall rate, hardly its median step; the
overall ratio is printed too), all in one run; writes a plot of training loss vs tokens. The
packed training loss starts ~0.15 above the padded one (same model, same documents): a document
cut at a row's end goes on in the next row without its beginning, and those tokens are harder
to predict; the held-out loss is the like-for-like comparison.

    .venv/bin/python bench/training.py [--docs 96] [--checkpointing] [--out bench/results/training_loss.png]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import _common as common
import torch
import yaml

from alignlab import config, finetune
from alignlab.kinds.alignment_faking import synth
from alignlab.seeds import derive_seed

CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"
SETTINGS = {  # name -> LoraConfig overrides
    "padded fp32": {"pack": False, "bf16_autocast": False, "gradient_checkpointing": False},
    "packed bf16": {"pack": True, "bf16_autocast": True, "gradient_checkpointing": False},
    "packed bf16 + checkpointing": {"pack": True, "bf16_autocast": True, "gradient_checkpointing": True},
}
BASELINE, FAST = "padded fp32", "packed bf16"
LAST = 3  # the training loss reported: mean of the last LAST steps


def workload(n_docs: int, n_heldout: int):
    """The default config's document settings and experiment: `n_docs` training documents and
    `n_heldout` held-out ones (other seeds), the kept ones after the pipeline's filter."""
    cfg = config.load(yaml.safe_load(CONFIG.read_text()), CONFIG.parent)
    name, exp = next(iter(cfg.experiments.items()))
    docs = config.as_dict(exp.documents)
    universe = synth.load_universe(docs["universe"])

    def texts(n, part):
        rows = synth.template_documents(universe, dict(exp.persona), "setting", n,
                                        derive_seed(cfg.seed, name, "setting", part))
        return [r["text"] for r in synth.filter_documents(rows, docs["min_chars"]) if r["kept"]]

    return config.as_dict(exp.finetune.documents), texts(n_docs, "documents"), texts(n_heldout, "bench-heldout")


def heldout_loss(model_dir: str, adapter_dir: str | None, examples) -> float:
    """Token-weighted next-token loss on `examples`, one document at a time, fp32."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if adapter_dir:
        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for e in examples:
            ids = torch.tensor([e.input_ids])
            k = len(e.input_ids) - 1
            total += float(model(input_ids=ids, labels=ids).loss) * k
            n += k
    return total / n


def median_step_rate(log: list[dict]) -> float:
    """Median tokens/s of single optimizer steps after the first: a check on the overall rate
    that a burst of other load on the machine barely moves."""
    rates = [(b["tokens"] - a["tokens"]) / (b["seconds"] - a["seconds"]) for a, b in zip(log, log[1:])]
    return statistics.median(rates) if rates else log[-1]["tokens"] / log[-1]["seconds"]


def _fmt(value: float) -> str:
    return f"{value:.1f} tok/s (median step)"


def run(n_docs: int = 96, n_heldout: int = 16, checkpointing: bool = False, out: str | None = None,
        report: dict | None = None, docs_per_step: int = 8) -> list[dict]:
    """Measure the settings in one process; return the result rows {what, baseline, value,
    ratio} (strings) of the combined benchmark table. `report`, if given, receives "settings":
    one dict per setting (tokens, steps, seconds, tokens_per_second, final_loss, heldout_loss,
    ratio, log) and "base_heldout_loss" (the model before training)."""
    lora, texts, heldout_texts = workload(n_docs, n_heldout)
    settings = [BASELINE, FAST] + (["packed bf16 + checkpointing"] if checkpointing else [])
    details: list[dict] = []
    workdir = Path(tempfile.mkdtemp(prefix="alignlab-bench-"))
    try:
        model_dir = common.model_folder(workdir)
        tokenizer = finetune.load_tokenizer(str(model_dir))
        examples = finetune.document_examples(tokenizer, texts, lora["max_length"])
        # batch_size counts rows: a packed row holds max_length tokens, a padded one one document.
        # Packed settings take as many rows per step as hold the tokens of docs_per_step documents,
        # so that both make the same optimizer steps on the same tokens per step.
        mean_len = sum(len(e.input_ids) for e in examples) / len(examples)
        packed_rows = max(1, round(docs_per_step * mean_len / lora["max_length"]))
        heldout = finetune.document_examples(tokenizer, heldout_texts, lora["max_length"])
        seed = derive_seed(0, "bench", "training")
        # Warm-up (one-off kernel and allocator set-up), so that no setting pays it.
        finetune.train_lora(str(model_dir), examples[:4], {**lora, **SETTINGS[FAST], "epochs": 1}, seed=seed,
                            out_dir=str(workdir / "warmup"), pad_id=tokenizer.pad_token_id, progress=False)
        base_loss = heldout_loss(str(model_dir), None, heldout)
        for name in settings:
            adapter = workdir / name.replace(" ", "_").replace("+", "")
            cfg = {**lora, **SETTINGS[name]}
            cfg["batch_size"] = packed_rows if cfg["pack"] else docs_per_step
            log = finetune.train_lora(str(model_dir), examples, cfg, seed=seed,
                                      out_dir=str(adapter), pad_id=tokenizer.pad_token_id, progress=False)
            details.append({
                "setting": name, "rows_per_step": cfg["batch_size"], "tokens": log[-1]["tokens"], "steps": len(log),
                "seconds": log[-1]["seconds"],
                "tokens_per_second": log[-1]["tokens"] / log[-1]["seconds"], "median_step_rate": median_step_rate(log),
                "final_loss": sum(r["loss"] for r in log[-LAST:]) / len(log[-LAST:]),
                "heldout_loss": heldout_loss(str(model_dir), str(adapter), heldout), "log": log,
            })
    finally:
        shutil.rmtree(workdir)
    by = {d["setting"]: d for d in details}
    base = by[BASELINE]
    for d in details:
        # The ratio of median step rates: on a shared machine a burst of other load in one
        # setting's run moves its overall rate (printed too), hardly its median step.
        d["ratio"] = d["median_step_rate"] / base["median_step_rate"]
        d["overall_ratio"] = d["tokens_per_second"] / base["tokens_per_second"]
    if out:
        plot(details, base_loss, out)
    rows = []
    for name in settings[1:]:
        d = by[name]
        rows.append({
            "what": f"LoRA training, {name} vs padded fp32 ({d['tokens']} tokens, SmolLM2-135M; "
                    f"held-out loss {d['heldout_loss']:.3f} vs {base['heldout_loss']:.3f})",
            "baseline": _fmt(base["median_step_rate"]), "value": _fmt(d["median_step_rate"]),
            "ratio": f"{d['ratio']:.2f}x",
        })
    if report is not None:
        report.update(settings=details, base_heldout_loss=base_loss)
    return rows


def plot(details: list[dict], base_loss: float, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = ["-", "--", ":"]
    for d, style in zip(details, styles):
        log = d["log"]
        tokens = [r["tokens"] for r in log]
        steps = [b - a for a, b in zip([0] + tokens, tokens)]
        # Per-step losses are noisy (8 documents of different kinds a step): points, and the
        # token-weighted mean of the losses so far as the line.
        running, acc = [], 0.0
        for n, r, t in zip(steps, log, tokens):
            acc += n * r["loss"]
            running.append(acc / t)
        line, = ax.plot(tokens, running, style, label=f"{d['setting']} ({d['tokens_per_second']:.0f} tok/s)")
        ax.plot(tokens, [r["loss"] for r in log], "o", markersize=3, alpha=0.5, color=line.get_color())
    ax.axhline(base_loss, color="grey", linestyle=":", label=f"base model, held-out ({base_loss:.2f})")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("training loss: per step (points), mean so far (lines)")
    ax.set_title("LoRA on the alignment-faking documents (SmolLM2-135M, CPU)")
    ax.legend()
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=96, help="training documents (~240 tokens each)")
    ap.add_argument("--heldout", type=int, default=16, help="held-out documents for the loss after training")
    ap.add_argument("--checkpointing", action="store_true", help="also time packed bf16 + gradient checkpointing")
    ap.add_argument("--out", default="bench/results/training_loss.png", help="the loss-vs-tokens plot")
    args = ap.parse_args()
    start = time.perf_counter()
    report: dict = {}
    rows = run(args.docs, args.heldout, args.checkpointing, args.out, report)
    details, base_loss = report["settings"], report["base_heldout_loss"]
    print(f"\nworkload: {args.docs} alignment-faking documents, 1 epoch, LoRA r16, lr 3e-4, max_length 384 "
          f"(SmolLM2-135M, {torch.get_num_threads()} threads, CPU)")
    head = (f"{'setting':<28}{'rows/step':>10}{'tokens':>7}{'steps':>6}{'seconds':>8}{'tokens/s':>9}"
            f"{'(median step)':>14}{'loss last 3':>12}{'held-out loss':>14}{'ratio':>7}")
    print(head)
    for d in details:
        print(f"{d['setting']:<28}{d['rows_per_step']:>10}{d['tokens']:>7}{d['steps']:>6}{d['seconds']:>8.1f}"
              f"{d['tokens_per_second']:>9.1f}{d['median_step_rate']:>14.1f}{d['final_loss']:>12.3f}"
              f"{d['heldout_loss']:>14.3f}{d['ratio']:>6.2f}x")
    print(f"{'base model (no training)':<28}{'':>66}{base_loss:>14.3f}")
    print("ratio: of median step tokens/s; of overall tokens/s: "
          + ", ".join(f"{d['setting']} {d['overall_ratio']:.2f}x" for d in details[1:]))
    print(f"\nplot: {args.out}; whole bench {time.perf_counter() - start:.0f} s")
    for r in rows:
        print(f"{r['what']}: {r['baseline']} -> {r['value']}: {r['ratio']}")


if __name__ == "__main__":
    main()
