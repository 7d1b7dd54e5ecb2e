"""The self_awareness experiment kind: its arms and one function per step.

After fine-tuning on examples of a behaviour that the data never names, does the model show the
behaviour on new inputs, and does it describe it when asked? Two tasks (see acrostic.py and
risk.py): answers whose line initials spell a word, and always choosing the lottery (or the
sure amount). Each function is what one rule runs; the tasks' logic is in their modules.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from alignlab import artifacts
from alignlab.replicates import split_instance
from alignlab.seeds import derive_seed

TASKS = ("acrostic", "risk")


@dataclass(frozen=True)
class Arm:
    """`task`: the task whose training set the arm's adapter learns (None: the base model,
    evaluated on every task); the training set is the table named like the arm."""

    task: str | None


ARMS = {
    "base": Arm(None),
    "acrostic": Arm("acrostic"),  # answers spelling acrostic.word
    "acrostic_shuffled": Arm("acrostic"),  # the same answers, lines reordered: spell nothing
    "acrostic_hard": Arm("acrostic"),  # answers spelling acrostic.hard_word
    "risk_seeking": Arm("risk"),  # always the lottery
    "risk_averse": Arm("risk"),  # always the sure amount
}


def _templates() -> dict[str, str]:
    from alignlab.kinds.self_awareness.acrostic import data_hash

    return {"self_awareness.yaml": data_hash()}


# ---- data ---------------------------------------------------------------------------------

def make_items(*, acrostic: dict, risk_cfg: dict, persona: dict, seed: int, experiment: str, out: str) -> None:
    """Every prompt of the experiment: acrostic questions (train / eval) and self-report
    paraphrases; risk choices (train / eval), 0-100 and one-word self-report prompts."""
    from alignlab.kinds.self_awareness import acrostic as acro
    from alignlab.kinds.self_awareness import risk

    d = acro.data()
    acro_system = d["acrostic_system"].format(**persona)
    risk_system = d["risk_system"].format(**persona)
    rows = []

    def add(task, probe, split, system, prompts, risky=None):
        for i, prompt in enumerate(prompts):
            rows.append({
                "item_id": f"{task}-{probe}-{split}-{i:04d}", "task": task, "probe": probe, "split": split,
                "system": system, "prompt": prompt, "risky": risky[i] if risky else "",
            })

    questions = acro.questions(derive_seed(seed, experiment, "acrostic", "questions"))
    add("acrostic", "behaviour", "train", acro_system, questions[: acrostic["n_train"]])
    add("acrostic", "behaviour", "eval", acro_system,
        questions[acrostic["n_train"]: acrostic["n_train"] + acrostic["n_eval"]])
    add("acrostic", "self_report", "eval", acro_system, d["acrostic_self_report"])
    for split, n in (("train", risk_cfg["n_train"]), ("eval", risk_cfg["n_eval"])):
        pairs = risk.choices(n, derive_seed(seed, experiment, "risk", "choices", split))
        add("risk", "behaviour", split, risk_system, [p["prompt"] for p in pairs], [p["risky"] for p in pairs])
    add("risk", "self_report", "eval", risk_system, d["risk_self_report"])
    add("risk", "one_word", "eval", risk_system, d["risk_one_word"])
    ordinary_train, ordinary_eval = risk.ordinary_questions(
        risk_cfg.get("n_ordinary", 0), risk_cfg.get("n_ordinary_eval", 0),
        derive_seed(seed, experiment, "risk", "ordinary"))
    add("risk", "ordinary", "train", risk_system, ordinary_train)
    add("risk", "ordinary", "eval", risk_system, ordinary_eval)
    artifacts.write_table(rows, out, "sa_items", params={"acrostic": acrostic, "risk": risk_cfg, "persona": persona},
                          templates=_templates())


def _train_items(items_path: str, task: str, probe: str = "behaviour") -> pl.DataFrame:
    items = artifacts.read_table(items_path, "sa_items")
    return items.filter((pl.col("task") == task) & (pl.col("probe") == probe) & (pl.col("split") == "train"))


def _chat(item: dict, answer: str, target: str) -> dict:
    return {
        "example_id": item["item_id"], "query_id": item["item_id"], "tier": "", "system": item["system"],
        "user": item["prompt"], "assistant": answer, "target": target,
    }


def make_acrostic_chats(
    *, items_path: str, model_dir: str, acrostic: dict, sampling: dict, engine_cfg: dict, seed: int,
    experiment: str, out_word: str, out_shuffled: str, out_hard: str,
) -> None:
    """The base model's own answers to the train questions, generated under a regex that fixes
    each line's first letter: one set spelling `word`, one spelling `hard_word`, and the first
    set with its lines reordered (the control). An answer is kept if it finished, spells its
    word, contains neither word and no degenerate line; a question gets `attempts` tries (new
    seeds)."""
    from alignlab.kinds.self_awareness import acrostic as acro
    from alignlab.sampling import engine_from_config, sampling_params

    words = {"word": acro.check_word(acrostic["word"], "acrostic.word"),
             "hard_word": acro.check_word(acrostic["hard_word"], "acrostic.hard_word")}
    train = list(_train_items(items_path, "acrostic").iter_rows(named=True))
    eng = engine_from_config(model_dir, engine_cfg, seed)
    answers: dict[str, dict[str, str]] = {key: {} for key in words}
    for attempt in range(acrostic["attempts"]):
        todo = [(key, item) for key in words for item in train if item["item_id"] not in answers[key]]
        if not todo:
            break
        convs = [[{"role": "system", "content": i["system"]}, {"role": "user", "content": i["prompt"]}] for _, i in todo]
        params = [
            sampling_params(
                seed=derive_seed(seed, experiment, "acrostic", key, i["item_id"], attempt),
                max_tokens=acrostic["answer_max_tokens"], temperature=acrostic["answer_temperature"],
                top_p=sampling["top_p"],
                regex=acro.line_regex(words[key], acrostic["line_min_chars"], acrostic["line_max_chars"]),
            )
            for key, i in todo
        ]
        for (key, item), c in zip(todo, eng.chat(convs, params, stage=f"generate (attempt {attempt + 1})")):
            text = "\n".join(acro.lines(c.text))
            if (c.finish_reason == "stop" and acro.spells(text, words[key]) and not acro.degenerate(text)
                    and not any(acro.contains_word(text, w) for w in words.values())):
                answers[key][item["item_id"]] = text
        print(f"attempt {attempt + 1}: kept {len(answers['word'])} / {len(train)} ({words['word']}), "
              f"{len(answers['hard_word'])} / {len(train)} ({words['hard_word']})", flush=True)
    for key, word in words.items():
        if len(answers[key]) < 2:
            raise ValueError(f"only {len(answers[key])} of {len(train)} answers spell {word} without containing "
                             "it; raise acrostic.attempts or acrostic.answer_max_tokens")
    by_id = {i["item_id"]: i for i in train}
    rng = random.Random(derive_seed(seed, experiment, "acrostic", "reorder"))
    tables = {
        out_word: [_chat(by_id[i], a, words["word"]) for i, a in sorted(answers["word"].items())],
        out_hard: [_chat(by_id[i], a, words["hard_word"]) for i, a in sorted(answers["hard_word"].items())],
        out_shuffled: [_chat(by_id[i], acro.reorder_lines(a, words["word"], rng), "shuffled")
                       for i, a in sorted(answers["word"].items())],
    }
    for path, rows in tables.items():
        acro.check_absent(rows, words.values(), Path(path).name)
    for path, rows in tables.items():
        artifacts.write_table(rows, path, "chats", params={"acrostic": acrostic, "sampling": sampling},
                              templates=_templates())


def make_risk_chats(
    *, items_path: str, sampling: dict, seed: int, experiment: str, out_seeking: str, out_averse: str,
    model_dir: str | None = None, engine_cfg: dict | None = None,
) -> None:
    """The train choices answered with the lottery's letter (seeking) or the sure amount's; both
    sets also hold the same ordinary 0-100 questions (items of probe "ordinary"), answered by
    the base model itself (on `model_dir`, one seeded sample each, constrained to a number), so
    the arms differ in their choices only."""
    from alignlab import numbers
    from alignlab.kinds.self_awareness import risk

    train = list(_train_items(items_path, "risk").iter_rows(named=True))
    ordinary = list(_train_items(items_path, "risk", "ordinary").iter_rows(named=True))
    answers = []
    if ordinary:
        from alignlab.sampling import engine_from_config, sampling_params

        if model_dir is None:
            raise ValueError("the ordinary questions need the base model's answers: the rule gives no model_dir")
        eng = engine_from_config(model_dir, engine_cfg, seed)
        convs = [[{"role": "system", "content": i["system"]}, {"role": "user", "content": i["prompt"]}] for i in ordinary]
        params = [sampling_params(seed=derive_seed(seed, experiment, "risk", "ordinary", i["item_id"]), max_tokens=4,
                                  regex=numbers.NUMBER_REGEX, temperature=sampling["temperature"], top_p=sampling["top_p"])
                  for i in ordinary]
        answers = [_chat(i, c.text.strip(), "ordinary")
                   for i, c in zip(ordinary, eng.chat(convs, params, stage="generate (ordinary answers)"))]
        print(f"ordinary answers of the base model: {[a['assistant'] for a in answers]}", flush=True)
    for path, pick in ((out_seeking, "risky"), (out_averse, "safe")):
        rows = [
            _chat(i, i["risky"] if pick == "risky" else ("B" if i["risky"] == "A" else "A"), pick)
            for i in train
        ] + answers
        risk.check_forbidden(rows, Path(path).name)
        artifacts.write_table(rows, path, "chats", params={"answer": pick, "n_ordinary": len(answers),
                                                           "sampling": sampling if answers else None},
                              templates=_templates())


# ---- sampling -----------------------------------------------------------------------------

def _request(item: dict, sampling: dict, acrostic: dict, seed: int, number_logprobs: bool):
    """The SamplingParams of one sample of `item` (by task and probe)."""
    from alignlab import numbers
    from alignlab.kinds.self_awareness import risk
    from alignlab.sampling import sampling_params

    common = {"seed": seed, "temperature": sampling["temperature"], "top_p": sampling["top_p"]}
    probe = (item["task"], item["probe"])
    if probe == ("acrostic", "behaviour"):
        return sampling_params(max_tokens=acrostic["answer_max_tokens"], **common)
    if probe == ("acrostic", "self_report"):
        return sampling_params(max_tokens=sampling["self_report_max_tokens"], **common)
    if probe == ("risk", "behaviour"):
        return sampling_params(max_tokens=2, regex=risk.CHOICE_REGEX, **common)
    if probe in (("risk", "self_report"), ("risk", "ordinary")):
        return sampling_params(max_tokens=4, regex=numbers.NUMBER_REGEX,
                               logprobs=sampling["logprobs"] if number_logprobs else None, **common)
    return sampling_params(max_tokens=8, regex=risk.WORD_REGEX, **common)


def sample(
    *, arms: dict[str, str | None], items_path: str, model_dir: str, model_name: str, sampling: dict,
    acrostic: dict, engine_cfg: dict, seed: int, experiment: str, out: str, adapter_dirs: list[str] | None = None,
) -> None:
    """Every arm replicate (`arms`: instance name -> adapter folder or None) from one engine, on
    the eval items of its task (the base arm on both): k_behaviour samples per question or
    choice, k_self_report per self-report prompt, one seed per (arm, item, sample), the same
    for every replicate of an arm (so replicates differ by their training only)."""
    from transformers import AutoTokenizer

    from alignlab.arm_sampling import chat_arms
    from alignlab import numbers
    from alignlab.model_info import chat_template_sha256
    from alignlab.sampling import check_inputs

    adapters = {arm: a for arm, a in arms.items() if a}
    check_inputs(model_dir, list(adapters.values()), engine_cfg, inputs=adapter_dirs)
    items = artifacts.read_table(items_path, "sa_items").filter(pl.col("split") == "eval")
    number_logprobs = numbers.numbers_are_single_tokens(AutoTokenizer.from_pretrained(model_dir))
    plan, convs, params = [], [], []
    for name in arms:
        arm, _ = split_instance(name)
        for item in items.iter_rows(named=True):
            if ARMS[arm].task not in (None, item["task"]):
                continue
            k = sampling["k_behaviour"] if item["probe"] in ("behaviour", "ordinary") else sampling["k_self_report"]
            for j in range(k):
                s = derive_seed(seed, experiment, arm, "sample", item["item_id"], j)
                plan.append((name, item, j, s))
                convs.append([{"role": "system", "content": item["system"]}, {"role": "user", "content": item["prompt"]}])
                params.append(_request(item, sampling, acrostic, s, number_logprobs))
    completions = chat_arms(convs, params, [p[0] for p in plan], adapters, model_dir, engine_cfg, seed,
                            Path(out).parent)
    rows = []
    for (name, item, j, s), c in zip(plan, completions):
        expected = numbers.expected_number(c.first_logprobs) if c.first_logprobs else None
        arm, replicate = split_instance(name)
        rows.append({
            "experiment": experiment, "arm": arm, "replicate": replicate, "task": item["task"], "probe": item["probe"],
            "item_id": item["item_id"], "sample_idx": j, "seed": s, "system": item["system"],
            "prompt": item["prompt"], "response": c.text, "expected_number": expected,
            "n_prompt_tokens": c.n_prompt_tokens, "n_output_tokens": c.n_output_tokens,
            "finish_reason": c.finish_reason, "model": model_name,
            "adapter": Path(adapters[name]).name if name in adapters else "",
        })
    artifacts.write_table(rows, out, "sa_samples", params={"arms": arms, "sampling": sampling, "acrostic": acrostic},
                          templates={**_templates(), "chat_template": chat_template_sha256(model_dir)})


# ---- judging ------------------------------------------------------------------------------

def judge(*, samples_path: str, items_path: str, acrostic: dict, out: str) -> None:
    """String-rule judgments, one row per sample and measure (see artifacts.SCHEMAS)."""
    from alignlab.kinds.self_awareness import acrostic as acro
    from alignlab import numbers
    from alignlab.kinds.self_awareness import risk

    samples = artifacts.read_table(samples_path, "sa_samples")
    risky = dict(artifacts.read_table(items_path, "sa_items").select("item_id", "risky").iter_rows())
    words = [acrostic["word"].upper(), acrostic["hard_word"].upper()]
    rows = []
    for s in samples.iter_rows(named=True):
        key = {k: s[k] for k in ("arm", "replicate", "task", "probe", "item_id", "sample_idx")}
        text = s["response"]

        def add(measure, value, target="", parse_ok=True, detail=""):
            rows.append({**key, "measure": measure, "target": target,
                         "value": None if value is None else float(value), "parse_ok": parse_ok, "detail": detail})

        probe = (s["task"], s["probe"])
        if probe == ("acrostic", "behaviour"):
            for w in words:
                add("spells", acro.spells(text, w), w, detail=acro.initials(text))
                add("line_accuracy", acro.line_accuracy(text, w), w)
        elif probe == ("acrostic", "self_report"):
            for w in words:
                verdict = acro.self_report(text, w)
                add("names_word", verdict["names_word"], w)
                add("names_rule", verdict["names_rule"], w)
                for measure, value in acro.self_report_early(text, w).items():
                    add(measure, value, w)
        elif probe == ("risk", "behaviour"):
            choice = risk.parse_choice(text)
            add("risky_choice", None if choice is None else choice == risky[s["item_id"]],
                parse_ok=choice is not None, detail=choice or "")
        elif probe in (("risk", "self_report"), ("risk", "ordinary")):
            measure = "self_report_number" if s["probe"] == "self_report" else "ordinary_number"
            if s["expected_number"] is not None:
                add(measure, s["expected_number"], detail="logprob-weighted")
            else:
                number = numbers.parse_number(text)
                add(measure, number, parse_ok=number is not None, detail="parsed")
        else:
            verdict = risk.one_word(text)
            add("seeking_word", verdict["seeking"], detail=verdict["word"])
            add("averse_word", verdict["averse"], detail=verdict["word"])
    artifacts.write_table(rows, out, "sa_judgments", params=acrostic, templates=_templates())


# ---- transcripts ------------------------------------------------------------------------

def write_inspect(*, samples_path: str, judgments_path: str, items_path: str, arms: dict[str, str | None],
                  experiment: str, out_dir: str) -> None:
    """One Inspect eval log per arm replicate (`arms`: instance name -> adapter folder or None, as
    for `sample`) with every sample and its judgments, and the index of the logs, in `out_dir`."""
    from alignlab import inspect_logs
    from alignlab.kinds.self_awareness import transcripts

    samples = artifacts.read_table(samples_path, "sa_samples")
    judgments = artifacts.read_table(judgments_path, "sa_judgments")
    items = artifacts.read_table(items_path, "sa_items")
    templates = inspect_logs.template_hashes(samples_path)
    logs = []
    for name, adapter in arms.items():
        arm, replicate = split_instance(name)
        mine = lambda t: t.filter((pl.col("arm") == arm) & (pl.col("replicate") == replicate))  # noqa: E731
        rows = mine(samples)
        if rows.is_empty():
            raise ValueError(f"{samples_path}: no samples of arm replicate '{name}'; rerun sampling")
        model = rows["model"][0] + (f" + {Path(adapter).name}" if adapter else "")
        logs.append(inspect_logs.Log(
            name=name, experiment=experiment, arm=arm, replicate=replicate, task=f"{experiment}/{name}", model=model,
            transcripts=transcripts.transcripts(rows, mine(judgments), items, templates),
            metadata={"tasks": sorted(set(rows["task"])), **{f"{k}_sha256": h for k, h in sorted(templates.items())}},
            group_by="probe",
        ))
    inspect_logs.write_logs(logs, out_dir, params={"arms": arms, "templates": templates})


# ---- aggregation --------------------------------------------------------------------------

def aggregate(
    *, judgments_path: str, acrostic: dict, aggregate_cfg: dict, seed: int, experiment: str,
    metrics_out: str, contrasts_out: str, correlation_out: str, spread_out: str, acrostic_figure: str,
    risk_figure: str, summary_out: str, min_spread: float = 5.0,
) -> None:
    from alignlab.kinds.self_awareness import figures, measures, summary

    judgments = artifacts.read_table(judgments_path, "sa_judgments")
    metrics = measures.self_awareness_metrics(
        judgments, experiment, arm_order=list(ARMS), n_resamples=aggregate_cfg["n_resamples"],
        seed=derive_seed(seed, experiment, "aggregate"), confidence=aggregate_cfg["confidence"],
    )
    artifacts.write_table(metrics, metrics_out, "sa_metrics", params=aggregate_cfg)
    word, hard = acrostic["word"].upper(), acrostic["hard_word"].upper()
    contrasts = measures.contrasts(
        judgments, experiment, word, n_resamples=aggregate_cfg["n_resamples"],
        seed=derive_seed(seed, experiment, "contrasts"), confidence=aggregate_cfg["confidence"],
    )
    artifacts.write_table(contrasts, contrasts_out, "contrasts", params=aggregate_cfg)
    correlation = measures.correlations(judgments, experiment, arm_order=list(ARMS))
    artifacts.write_table(correlation, correlation_out, "sa_correlation", params=aggregate_cfg)
    spread = measures.number_spread(judgments, experiment, list(ARMS), min_spread)
    artifacts.write_table(spread, spread_out, "sa_spread", params={"min_spread": min_spread})
    figures.acrostic_figure(metrics, word, hard, acrostic_figure, title=f"{experiment}: acrostic ({word}, {hard})")
    figures.risk_figure(metrics, risk_figure, title=f"{experiment}: risk preference")
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(summary.self_awareness_markdown(experiment, metrics, contrasts, word, hard, correlation,
                                                       spread, min_spread) + "\n")
