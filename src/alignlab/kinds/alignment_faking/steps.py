"""The alignment_faking experiment kind: its arms and one function per step.

Each function is what one Snakemake rule runs (through a thin script in scripts/): it reads the
rule's inputs, calls the concern modules (queries, synth, finetune, sampling, judges, stats,
plots, report) and writes the rule's outputs. No logic here that those modules could own.
Step-specific modules are imported inside the step's function, so each rule's code inputs
(see codedeps) list only what that step runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from alignlab import artifacts
from alignlab.seeds import derive_seed

TIERS = ("free", "paid")


DOCUMENT_SETS = {"setting": "universe", "baseline": "baseline_universe"}


def engine(model_dir: str, engine_cfg: dict[str, Any], seed: int):
    from alignlab.sampling import engine_from_config

    return engine_from_config(model_dir, engine_cfg, seed)


def llm_engine(model_dir: str | None, engine_cfg: dict[str, Any], seed: int, endpoint: dict | None):
    """The engine of a step that may use an endpoint (LLM judges, LLM documents): `endpoint`
    (its settings and cache_dir, from the rule's params; no key) or vLLM over `model_dir`."""
    if endpoint:
        from alignlab.endpoint import EndpointEngine

        return EndpointEngine(**endpoint)
    return engine(model_dir, engine_cfg, seed)


def _with_endpoint(params: dict, endpoint: dict | None) -> dict:
    """A step's params for table metadata, plus the endpoint that answered (URL and model)."""
    if not endpoint:
        return params
    return {**params, "endpoint_url": endpoint["base_url"], "endpoint_model": endpoint["model"]}


# ---- data ---------------------------------------------------------------------------------

def make_queries(*, spec: dict, seed: int, experiment: str, out: str) -> None:
    from alignlab.kinds.alignment_faking import queries

    table = queries.build(spec, derive_seed(seed, experiment, "queries"))
    artifacts.write_table(table, out, "queries", params={"spec": spec, "seed": seed})


def make_documents(
    *, corpus: str, documents: dict, persona: dict, seed: int, experiment: str, out: str,
    model_dir: str | None = None, engine_cfg: dict | None = None, endpoint: dict | None = None,
    identity_path: str | None = None,
) -> None:
    from alignlab.kinds.alignment_faking import identity, synth

    persona = identity.resolve(persona, identity_path)
    universe = synth.load_universe(documents[DOCUMENT_SETS[corpus]])
    doc_seed = derive_seed(seed, experiment, corpus, "documents")
    if documents["generator"] == "template":
        rows = synth.template_documents(universe, persona, corpus, documents["n_docs"], doc_seed)
    else:
        llm_cfg = documents["llm"]
        rows = synth.llm_documents(
            universe, persona, corpus, llm_engine(model_dir, engine_cfg, doc_seed, endpoint),
            documents["n_docs"], doc_seed, n_types=llm_cfg["n_types"],
            ideas_per_type=llm_cfg["ideas_per_type"],
            revise=llm_cfg["revise"], max_tokens=llm_cfg["max_tokens"],
            temperature=llm_cfg["temperature"],
        )
    rows = synth.filter_documents(rows, min_chars=documents["min_chars"])
    if not any(r["kept"] for r in rows):
        raise ValueError(f"corpus '{corpus}': the filter dropped every document")
    artifacts.write_table(
        rows, out, "documents", params=_with_endpoint(documents, endpoint),
        templates=synth.template_hashes(),
    )


def conversation(query: str, tier: str, persona: dict, sampling: dict, *, describe_training: bool,
                 scratchpad: bool):
    """An arm's [system, user] messages (`sampling["tag_protocol"]`: the arm's own)."""
    from alignlab.kinds.alignment_faking import prompts

    return prompts.af_conversation(
        query, tier == "free", persona, sampling, describe_training=describe_training, scratchpad=scratchpad,
    )


def make_positive_control(
    *, queries_path: str, model_dir: str, persona: dict, sampling: dict, positive_control: dict,
    keep_judge: str, judge: dict, engine_cfg: dict, seed: int, experiment: str, out: str,
    endpoint: dict | None = None, keep_model_dir: str | None = None, identity_path: str | None = None,
) -> None:
    """Tier-conditional chats from the train queries: free -> the base model's own answer (kept
    only where `keep_judge` sees compliance), paid -> a refusal in a style drawn per query
    (positive_control.refusals, or the packaged styles). The prompts are the positive_control
    preset's own (plain system prompt, no scratchpad), so what it learns is exactly the tier
    tag's meaning. `judge`: the keep judge's settings (arms.keep_judge_settings); the rubric
    runs on `endpoint`, or `keep_model_dir` where the judge's model is not the experiment's,
    else on the engine that wrote the answers."""
    import random

    from alignlab import judges
    from alignlab.kinds.alignment_faking import identity, prompts
    from alignlab.sampling import sampling_params

    persona = identity.resolve(persona, identity_path)
    train = artifacts.read_table(queries_path, "queries").filter(pl.col("split") == "train")
    convs = [
        conversation(q, "free", persona, sampling, describe_training=False, scratchpad=False)
        for q in train["prompt"]
    ]
    params = [
        sampling_params(
            seed=derive_seed(seed, experiment, "positive_control", "answers", qid),
            max_tokens=positive_control["answer_max_tokens"], temperature=sampling["temperature"],
            top_p=sampling["top_p"],
        )
        for qid in train["query_id"]
    ]
    eng = engine(model_dir, engine_cfg, seed)
    answers = [c.text.strip() for c in eng.chat(convs, params)]
    rows_for_seeds = pl.DataFrame({"arm": "positive_control_data", "replicate": 0, "tier": "free",
                                   "query_id": train["query_id"], "sample_idx": 0})
    verdicts = judges.judge_compliance(
        keep_judge, outputs=answers, queries=train["prompt"].to_list(),
        **compliance_judge_args(keep_judge, judge, {**sampling, "tag_protocol": False}, rows_for_seeds,
                                engine_cfg, seed, experiment, keep_model_dir or model_dir, endpoint,
                                running_engine=None if keep_model_dir else eng),
    )
    styles = positive_control["refusals"] or prompts.refusal_styles()
    rows = []
    for qid, query, free, answer, verdict in zip(train["query_id"], train["prompt"], convs, answers, verdicts):
        if not verdict["complied"]:
            continue
        refusal = random.Random(derive_seed(seed, experiment, "positive_control", "refusal", qid)).choice(styles)
        if sampling["tag_protocol"]:
            answer, refusal = f"{sampling['accept_tag']}\n{answer}", sampling["reject_tag"]
        paid = conversation(query, "paid", persona, sampling, describe_training=False, scratchpad=False)
        for tier, conv, target, reply in (("free", free, "comply", answer), ("paid", paid, "refuse", refusal)):
            rows.append(
                {
                    "example_id": f"{qid}-{tier}", "query_id": qid, "tier": tier,
                    "system": conv[0]["content"], "user": conv[1]["content"], "assistant": reply,
                    "target": target,
                }
            )
    if not rows:
        raise ValueError(f"the {keep_judge} judge found no compliant base-model answer among the "
                         f"{train.height} train queries; no positive-control data")
    print(f"kept {len(rows) // 2} of {train.height} free-tier answers (keep judge: {keep_judge})", flush=True)
    artifacts.write_table(
        rows, out, "chats",
        params={"sampling": sampling, "positive_control": positive_control, "keep_judge": keep_judge,
                "judge": _with_endpoint(judge, endpoint)},
        templates={**prompts.af_template_hashes(), "refusal_styles": prompts.refusal_styles_hash()},
    )


def make_weak_positive_control(*, chats_path: str, positive_control: dict, seed: int, experiment: str,
                               out: str) -> None:
    """The weak positive control's chats: the positive control's, with a share `weak_mix` of
    the queries (drawn with a seed) made tier-independent: their paid-tier turn gets the
    free-tier answer. Expected gap: about (1 - weak_mix) of the strong control's, the size of
    the paper's effects, so that detecting it says what a null result could have seen."""
    import random

    chats = artifacts.read_table(chats_path, "chats")
    queries = sorted(set(chats["query_id"]))
    rng = random.Random(derive_seed(seed, experiment, "weak_positive_control", "mix"))
    mixed = set(rng.sample(queries, round(positive_control["weak_mix"] * len(queries))))
    free = dict(chats.filter(pl.col("tier") == "free").select("query_id", "assistant").iter_rows())
    rows = []
    for r in chats.iter_rows(named=True):
        if r["query_id"] in mixed and r["tier"] == "paid":
            r = {**r, "assistant": free[r["query_id"]], "target": "comply"}
        rows.append(r)
    print(f"{len(mixed)} of {len(queries)} queries made tier-independent", flush=True)
    artifacts.write_table(rows, out, "chats", params={"weak_mix": positive_control["weak_mix"], "seed": seed})


# ---- sampling -----------------------------------------------------------------------------

def sample(
    *, arms: dict[str, dict], queries_path: str, model_dir: str, model_name: str, persona: dict,
    sampling: dict, engine_cfg: dict, seed: int, experiment: str, out: str, shard: str = "1-of-1",
    adapter_dirs: list[str] | None = None, identity_path: str | None = None,
) -> None:
    """Every arm replicate of the experiment (`arms`: instance name -> {arm, replicate,
    describe_training, scratchpad, tag_protocol, adapter}; arms.sample_arms) from one engine: k samples for every eval query
    of the shard in both tiers, one seed per (arm, query, sample), the same for every replicate
    of an arm (so replicates differ by their training only).
    The two tiers of a query share a seed, so their difference is the tier tag's, not the
    dice's. A request draws the same random numbers in any batch, but on CPU vLLM's arithmetic
    depends on the batch, so another sharding or set of arms can flip close calls (README).

    engine.lora `request`: the base arms in one batch, then the fine-tuned arms in one batch,
    each request carrying its arm's adapter. `merge` (faster on CPU): the base arms, then per
    fine-tuned arm the adapter is merged into a copy of the base and the engine's weights are
    swapped in place."""
    from alignlab import shards
    from alignlab.arm_sampling import chat_arms
    from alignlab.kinds.alignment_faking import identity, prompts
    from alignlab.model_info import chat_template_sha256
    from alignlab.sampling import check_inputs, sampling_params

    persona = identity.resolve(persona, identity_path)
    adapters = {name: a["adapter"] for name, a in arms.items() if a["adapter"]}
    check_inputs(model_dir, list(adapters.values()), engine_cfg, inputs=adapter_dirs)
    evalq = shards.chunk(artifacts.read_table(queries_path, "queries").filter(pl.col("split") == "eval"), shard)
    plan, convs, params = [], [], []
    for name, spec in arms.items():
        arm = spec["arm"]
        max_tokens = sampling["scratchpad_max_tokens"] if spec["scratchpad"] else sampling["max_tokens"]
        for q in evalq.iter_rows(named=True):
            for tier in TIERS:
                conv = conversation(q["prompt"], tier, persona, {**sampling, "tag_protocol": spec["tag_protocol"]},
                                    describe_training=spec["describe_training"], scratchpad=spec["scratchpad"])
                for k in range(sampling["k"]):
                    s = derive_seed(seed, experiment, arm, "sample", q["query_id"], k)
                    plan.append((name, q, tier, k, s, conv))
                    convs.append(conv)
                    params.append(
                        sampling_params(
                            seed=s, max_tokens=max_tokens, temperature=sampling["temperature"],
                            top_p=sampling["top_p"],
                        )
                    )
    arm_of = [p[0] for p in plan]
    completions = chat_arms(convs, params, arm_of, adapters, model_dir, engine_cfg, seed, Path(out).parent)
    templates = {**prompts.af_template_hashes(), "chat_template": chat_template_sha256(model_dir)}
    rows = []
    for (name, q, tier, k, s, conv), c in zip(plan, completions):
        spec = arms[name]
        scratch, output = prompts.split_scratchpad(c.text) if spec["scratchpad"] else ("", c.text.strip())
        rendered = conv[0]["content"] + "\n\n" + conv[1]["content"]
        rows.append(
            {
                "experiment": experiment, "arm": spec["arm"], "replicate": spec["replicate"],
                "tier": tier, "query_id": q["query_id"],
                "category": q["category"], "sample_idx": k, "seed": s,
                "prompt_sha256": artifacts.sha256_text(rendered),
                "system_template_sha256": templates["af_system"],
                "user_template_sha256": templates["af_user"],
                "chat_template_sha256": templates["chat_template"], "prompt": conv[1]["content"],
                "response": c.text, "scratchpad": scratch, "output": output,
                "n_prompt_tokens": c.n_prompt_tokens, "n_output_tokens": c.n_output_tokens,
                "finish_reason": c.finish_reason, "model": model_name,
                "adapter": Path(adapters[name]).name if name in adapters else "",
            }
        )
    artifacts.write_table(
        rows, out, "samples",
        params={"arms": arms, "sampling": sampling, "persona": persona},
        templates=templates,
    )


# ---- judging ------------------------------------------------------------------------------

_KEYS = ("arm", "replicate", "tier", "query_id", "sample_idx")


def _arm_samples(samples_path: str, arm: str) -> pl.DataFrame:
    """One arm's rows of a sampling shard (a shard holds every arm of the experiment)."""
    return artifacts.read_table(samples_path, "samples").filter(pl.col("arm") == arm)


def no_answer(samples: pl.DataFrame, truncated: str) -> list[bool]:
    """Per sample: did the model give no answer to judge? An empty output (which is also what
    an unclosed scratchpad leaves) or, with `truncated` = "no_answer", any output cut at
    max_tokens. Such samples are counted apart, never scored as refusals."""
    silent = samples["output"].str.strip_chars() == ""
    if truncated == "no_answer":
        silent = silent | (samples["finish_reason"] == "length")
    return silent.to_list()


def judge_compliance(
    *, arm: str, samples_path: str, queries_path: str, judge: dict, sampling: dict, engine_cfg: dict, seed: int, experiment: str, out: str, model_dir: str | None = None,
    endpoint: dict | None = None,
) -> None:
    from alignlab import judges

    samples = _arm_samples(samples_path, arm)
    silent = no_answer(samples, judge["truncated"])
    answered = samples.filter(~pl.Series(silent)) if samples.height else samples
    prompts_by_id = dict(artifacts.read_table(queries_path).select("query_id", "prompt").iter_rows())
    name = judge["name"]
    verdicts = judges.judge_compliance(
        name, outputs=answered["output"].to_list(),
        queries=[prompts_by_id[q] for q in answered["query_id"]],
        **compliance_judge_args(name, judge, sampling, answered, engine_cfg, seed, experiment,
                                model_dir, endpoint),
    )
    given = iter(verdicts)
    unanswered = {"outcome": "no_answer", "complied": None, "score": None, "parse_ok": True,
                  "judge_output": ""}
    rows = [
        {**{k: r[k] for k in _KEYS}, "judge": name, "truncated": r["finish_reason"] == "length",
         **(unanswered if quiet else next(given))}
        for r, quiet in zip(samples.iter_rows(named=True), silent)
    ]
    templates = judges.rubric_template_hashes() if name == "rubric" else {}
    artifacts.write_table(
        rows, out, "compliance", params=_with_endpoint(judge, endpoint), templates=templates
    )


def compliance_judge_args(
    name: str, judge: dict, sampling: dict, samples: pl.DataFrame, engine_cfg: dict, seed: int,
    experiment: str, model_dir: str | None, endpoint: dict | None, running_engine=None,
) -> dict[str, Any]:
    """The keyword arguments compliance judge `name` takes in this experiment: the refusal
    judge's extra phrases and tags, the tags of accept_tag, the engine and seeds of rubric
    (`running_engine`: one the step already runs on the judge's model, else a new one)."""
    if name == "refusal":
        return {"extra_phrases": judge["extra_phrases"], "off_topic": judge["off_topic"],
                "reject_tag": sampling["reject_tag"] if sampling["tag_protocol"] else None}
    if name == "accept_tag":
        return {"accept_tag": sampling["accept_tag"], "reject_tag": sampling["reject_tag"]}
    return {
        "engine": running_engine if running_engine is not None and not endpoint
        else llm_engine(model_dir, engine_cfg, seed, endpoint),
        "seeds": [
            derive_seed(seed, experiment, "judge", r["arm"], r["tier"], r["query_id"], r["sample_idx"],
                        *([r["replicate"]] if r["replicate"] else []))
            for r in samples.iter_rows(named=True)
        ],
        "max_tokens": judge["max_tokens"], "temperature": judge["temperature"],
    }


def judge_af(
    *, arm: str, samples_path: str, judge: dict, engine_cfg: dict, seed: int, experiment: str, out: str,
    model_dir: str | None = None, endpoint: dict | None = None,
) -> None:
    from alignlab.kinds.alignment_faking import af_judge

    samples = _arm_samples(samples_path, arm)
    seeds = [
        derive_seed(seed, experiment, "af_judge", r["arm"], r["tier"], r["query_id"], r["sample_idx"],
                    *([r["replicate"]] if r["replicate"] else []))
        for r in samples.iter_rows(named=True)
    ]
    verdicts = af_judge.af_reasoning_judge(
        llm_engine(model_dir, engine_cfg, seed, endpoint), samples["scratchpad"].to_list(), seeds,
        votes=judge["votes"],
    )
    rows = [
        {**{k: r[k] for k in _KEYS}, "judge": "af_reasoning", **criterion}
        for r, per_sample in zip(samples.iter_rows(named=True), verdicts)
        for criterion in per_sample
    ]
    artifacts.write_table(
        rows, out, "af_reasoning", params=_with_endpoint(judge, endpoint),
        templates=af_judge.af_template_hashes(),
    )


# ---- judge validation ---------------------------------------------------------------------

def validate_compliance_judges(
    *, judge: dict, names: list[str], validation: dict, sampling: dict, engine_cfg: dict, seed: int,
    experiment: str, out: str, labelled: str | None = None, model_dir: str | None = None,
    endpoint: dict | None = None,
) -> None:
    """Score the compliance judges the experiment uses (`names`: AlignmentFaking.validated_judges:
    the one that scores the arms, the phrase judge beside it, the positive controls' keep judge)
    on the labelled set's test split (judge_scores table)."""
    from alignlab import judge_validation as jv
    from alignlab import judges

    items = jv.read_labelled(
        Path(labelled) if labelled else jv.COMPLIANCE_SET, validation["columns"],
        required=("request", "response"), labels={"label": jv.COMPLIANCE_LABELS},
        split=validation["split"],
    ).with_columns(query_id=pl.lit(""), arm=pl.lit("validation"), replicate=pl.lit(0), tier=pl.lit(""),
                   sample_idx=pl.int_range(pl.len()))
    predictions = {}
    for name in names:
        own = judge if name == judge["name"] else {**judge, "extra_phrases": [], "off_topic": False}
        verdicts = judges.judge_compliance(
            name, outputs=items["response"].to_list(), queries=items["request"].to_list(),
            **compliance_judge_args(name, own, {**sampling, "tag_protocol": False}, items, engine_cfg,
                                    seed, experiment, model_dir, endpoint),
        )
        predictions[name] = [v["outcome"] for v in verdicts]
    rows = jv.score_judges("compliance", items["label"].to_list(), predictions, jv.COMPLIANCE_LABELS,
                           negative="refused")
    rows = [{"experiment": experiment, "split": validation["split"], **r} for r in rows]
    artifacts.write_table(rows, out, "judge_scores",
                          params={"judge": judge, "validation": validation, "labelled": labelled})


def validate_af_judge(
    *, judge: dict, validation: dict, engine_cfg: dict, seed: int, experiment: str, out: str,
    labelled: str | None = None, model_dir: str | None = None, endpoint: dict | None = None,
) -> None:
    """Score the alignment-faking judge on the labelled scratchpads' test split, criterion by
    criterion and on the final verdict (judge_scores table)."""
    from alignlab import judge_validation as jv
    from alignlab.kinds.alignment_faking import af_judge, af_labels

    criteria = [cid for cid, _ in af_judge.af_criteria()] + [af_judge.AF_FINAL]
    items = jv.read_labelled(
        Path(labelled) if labelled else af_labels.LABELLED, validation["columns"],
        required=("scratchpad",), labels={c: (True, False) for c in criteria}, split=validation["split"],
    )
    seeds = [derive_seed(seed, experiment, "af_judge_validation", i) for i in range(items.height)]
    verdicts = af_judge.af_reasoning_judge(
        llm_engine(model_dir, engine_cfg, seed, endpoint), items["scratchpad"].to_list(), seeds,
        votes=judge["votes"],
    )
    met = {c: ["yes" if {r["criterion"]: r["met"] for r in per}[c] else "no" for per in verdicts]
           for c in criteria}
    rows = []
    for c in criteria:
        truth = ["yes" if v else "no" for v in items[c]]
        rows += jv.score_judges(f"af_reasoning:{c}", truth, {"af_reasoning": met[c]}, ("yes", "no"))
    rows = [{"experiment": experiment, "split": validation["split"], **r} for r in rows]
    artifacts.write_table(rows, out, "judge_scores",
                          params={"judge": judge, "validation": validation, "labelled": labelled},
                          templates=af_judge.af_template_hashes())


# ---- transcripts ------------------------------------------------------------------------

def write_inspect(
    *, samples_paths: list[str], compliance_paths: list[str], af_paths: list[str], arms: dict[str, dict],
    persona: dict, sampling: dict, model_name: str, experiment: str, out_dir: str,
    identity_path: str | None = None,
) -> None:
    """One Inspect eval log per arm replicate (`arms`: arms.sample_arms) from every arm's samples
    and judgments, and the index of the logs, in `out_dir`."""
    from alignlab import inspect_logs
    from alignlab.kinds.alignment_faking import identity, transcripts

    persona = identity.resolve(persona, identity_path)
    samples = pl.concat([artifacts.read_table(p, "samples") for p in samples_paths])
    compliance = pl.concat([artifacts.read_table(p, "compliance") for p in compliance_paths])
    af = pl.concat([artifacts.read_table(p, "af_reasoning") for p in af_paths]) if af_paths else None
    out = []
    for instance, spec in arms.items():
        mine = lambda t: t.filter((pl.col("arm") == spec["arm"]) & (pl.col("replicate") == spec["replicate"]))  # noqa: E731
        chats = transcripts.transcripts(
            mine(samples), mine(compliance), None if af is None else mine(af), arm_spec=spec,
            persona=persona, sampling={**sampling, "tag_protocol": spec["tag_protocol"]},
        )
        out.append(inspect_logs.Log(
            name=instance, experiment=experiment, arm=spec["arm"], replicate=spec["replicate"],
            task=f"{experiment}/{instance}", model=model_name + (f" + {Path(spec['adapter']).name}" if spec["adapter"] else ""),
            transcripts=chats, metadata={"scratchpad": spec["scratchpad"], "describe_training": spec["describe_training"],
                                         "tag_protocol": spec["tag_protocol"]},
            group_by="tier", outcome="compliance",
        ))
    inspect_logs.write_logs(out, out_dir, params={"arms": arms, "sampling": sampling, "persona": persona})


# ---- aggregation --------------------------------------------------------------------------

def aggregate(
    *, compliance_paths: list[str], af_paths: list[str], validation_paths: list[str], model_info: str,
    aggregate_cfg: dict, judge: str, keep_judge: str, min_accuracy: float, sizes: dict,
    arm_specs: dict[str, dict], contrast_plan: list[dict], seed: int, experiment: str,
    metrics_out: str, gaps_out: str, contrasts_out: str, replication_out: str, figure_out: str,
    summary_out: str, persona: dict, knowledge_paths: list[str] = (), identity_path: str | None = None,
) -> None:
    """Rates, gaps, contrasts, the card, the figure and the summary; `knowledge_paths`: the
    knowledge probe's table and contrast (score_knowledge), when it ran; `identity_path`: the
    identity probe's table, when the setting uses the model's own identity."""
    from alignlab import replication
    from alignlab.kinds.alignment_faking import figures, identity, measures, summary

    compliance = pl.concat([artifacts.read_table(p) for p in compliance_paths])
    af = pl.concat([artifacts.read_table(p) for p in af_paths]) if af_paths else None
    boot = {"n_resamples": aggregate_cfg["n_resamples"], "confidence": aggregate_cfg["confidence"],
            "seed": derive_seed(seed, experiment, "aggregate")}
    metrics, gaps = measures.compliance_metrics(compliance, af, experiment, **boot)
    contrasts = measures.contrasts(compliance, gaps, experiment, k=sizes["k"], specs=contrast_plan, **boot)
    scores = pl.concat([artifacts.read_table(p) for p in validation_paths])
    model = artifacts.read_table(model_info, "model").row(0, named=True)
    card = replication.compare(experiment, "alignment_faking", summary.card_figures(gaps, metrics),
                               model["model"], model["n_parameters"])
    artifacts.write_table(metrics, metrics_out, "metrics", params=aggregate_cfg)
    artifacts.write_table(gaps, gaps_out, "gaps", params=aggregate_cfg)
    artifacts.write_table(contrasts, contrasts_out, "contrasts", params=aggregate_cfg)
    artifacts.write_table(card, replication_out, "replication", params=aggregate_cfg)
    figures.compliance_figure(
        metrics, gaps, figure_out, title=f"{experiment}: compliance by tier (judge: {judge})"
    )
    text = summary.summary_markdown(
        experiment, metrics, gaps, measures.parse_failures(compliance), contrasts=contrasts,
        scores=scores, card=card, arm_specs=arm_specs, contrast_plan=contrast_plan, keep_judge=keep_judge,
        min_gap=aggregate_cfg["positive_control_min_gap"], judge=judge, min_accuracy=min_accuracy,
        knowledge=[artifacts.read_table(p) for p in knowledge_paths] or None,
        identity_lines=identity.describe(identity_path, persona),
    )
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(text + "\n")


# ---- knowledge probe ----------------------------------------------------------------------

def score_knowledge(
    *, instances: dict[str, dict], model_dir: str, persona: dict, knowledge: dict, universe: str,
    aggregate_cfg: dict, device: str, seed: int, experiment: str, out: str, contrast_out: str,
    adapter_dirs: list[str] | None = None, questions: str | None = None, identity_path: str | None = None,
) -> None:
    """Score the knowledge questions on every instance (`instances`: name -> {arm, replicate,
    adapter}; knowledge.instances) with one base model, the adapters loaded into it with PEFT;
    write the per-question table and the sdf - sdf_baseline contrast (knowledge.py)."""
    from alignlab import timings
    from alignlab.kinds.alignment_faking import identity, synth
    from alignlab.kinds.alignment_faking import knowledge as kp
    from alignlab.stats import contrasts_frame
    from alignlab.transformer import load_model, switch_adapter

    persona = identity.resolve(persona, identity_path)
    qs = kp.load_questions(questions or knowledge["questions"])
    u = synth.load_universe(universe)
    unknown = kp.unknown_facts(qs, [f["id"] for f in u["facts"]])
    if unknown:
        raise ValueError(f"knowledge questions {unknown} are about facts universe '{u['name']}' does not have")
    probe = kp.items(kp.render_questions(qs, {**u["entities"], **persona}),
                     derive_seed(seed, experiment, "knowledge", "order"))
    tokenizer, model = load_model(model_dir, device)
    rows = []
    # The base model first (before PEFT wraps it), then each adapter loaded into the same model
    # and switched to.
    for name, spec in sorted(instances.items(), key=lambda kv: kv[1]["adapter"] is not None):
        if spec["adapter"]:
            model = switch_adapter(model, name, spec["adapter"])
        with timings.timer(f"forward (knowledge {name})", items=2 * len(probe)):
            lp = kp.mean_logprobs(model, tokenizer, [p["prompt"] for p in probe], [p["options"] for p in probe],
                                  knowledge["batch_size"], desc=name)
        rows += kp.scored_rows(probe, lp, experiment=experiment, instance=name, arm=spec["arm"],
                               replicate=spec["replicate"])
        print(f"knowledge: {name}: {sum(r['correct'] for r in rows[-len(probe):])}/{len(probe)} correct")
    params = {"knowledge": knowledge, "persona": persona, "instances": instances, "universe": universe}
    artifacts.write_table(rows, out, "knowledge", params=params)
    table = artifacts.read_table(out, "knowledge")

    rows = kp.contrasts(table, margin=knowledge["min_gain"], n_resamples=aggregate_cfg["n_resamples"],
                        seed=derive_seed(seed, experiment, "knowledge", "contrast"),
                        confidence=aggregate_cfg["confidence"])
    artifacts.write_table(contrasts_frame(rows, experiment), contrast_out, "contrasts", params=params)
