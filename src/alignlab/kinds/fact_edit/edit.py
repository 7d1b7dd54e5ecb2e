"""fact_edit: where a one-fact edit lands (rules/fact_edit.smk; its steps in fact_edit_steps.py).

Change one fact the base model knows (an athlete's sport) by fine-tuning only a configured range
of MLP layers (attention, norms and embeddings frozen) on the known facts with that one changed,
with an L1 and/or L2 penalty pulling the trained weights toward their initial values; then ask
how well the edit took (efficacy on the edited fact's templates, specificity on the other facts)
and where it landed (change per layer and per MLP neuron, and how consistent the set of
most-changed neurons is across seeds and facts).

Answers are scored as a choice: the model's answer to a prompt is the option (a sport's name,
with a leading space) whose tokens have the highest total log-probability after the prompt.
Neurons are Llama-style MLP neurons: neuron j of layer l is row j of gate_proj and up_proj and
column j of down_proj.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import yaml

from alignlab import weight_change
from alignlab.finetune import autocast_dtype
from alignlab.transformer import pad_batches

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("data/athletes.yaml",)

DATA_FILE = Path(__file__).parent / "data" / "athletes.yaml"


@dataclass(frozen=True)
class Fact:
    subject: str
    answer: str


def packaged() -> dict[str, Any]:
    """The packaged candidate facts, templates and answer options."""
    data = yaml.safe_load(DATA_FILE.read_text())
    return {
        "facts": [Fact(a["name"], a["sport"]) for a in data["athletes"]],
        "templates": list(data["templates"]),
        "options": list(data["sports"]),
    }


def prompt(template: str, fact: Fact) -> str:
    return template.format(name=fact.subject)


# ---- scoring ---------------------------------------------------------------------------------

@torch.no_grad()
def option_logprobs(model, tokenizer, prompts: Sequence[str], options: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """(n_prompts, n_options): the total log-probability of each option's tokens (" " + option)
    right after each prompt."""
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    option_ids = [tokenizer(" " + o, add_special_tokens=False)["input_ids"] for o in options]
    if all(len(ids) == 1 for ids in option_ids):
        # Every option is one token: one forward per prompt instead of one per (prompt, option).
        return _next_token_logprobs(model, tokenizer, prompts, batch_size, pad)[:, [ids[0] for ids in option_ids]]
    return _continuation_logprobs(model, tokenizer, prompts, option_ids, batch_size, pad)


def _continuation_logprobs(model, tokenizer, prompts: Sequence[str], option_ids: Sequence[list[int]],
                           batch_size: int, pad: int) -> torch.Tensor:
    """(n_prompts, n_options): one forward per (prompt, option) sequence, summing the option's tokens."""
    device = next(model.parameters()).device
    seqs = []
    for p in prompts:
        p_ids = tokenizer(p, add_special_tokens=True)["input_ids"]
        seqs += [(p_ids + o_ids, len(p_ids)) for o_ids in option_ids]
    scores = []
    for i, (ids, mask) in enumerate(pad_batches([s for s, _ in seqs], batch_size, pad)):
        logp = torch.log_softmax(model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float(), -1).cpu()
        for j, (s, start) in enumerate(seqs[i * batch_size:(i + 1) * batch_size]):
            positions = torch.arange(start, len(s))
            scores.append(float(logp[j, positions - 1, torch.tensor(s[start:])].sum()))
    return torch.tensor(scores).view(len(prompts), len(option_ids))


@torch.no_grad()
def _next_token_logprobs(model, tokenizer, prompts: Sequence[str], batch_size: int, pad: int) -> torch.Tensor:
    """(n_prompts, vocab): the log-probabilities of the token after each prompt."""
    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    rows = [torch.empty(0, model.config.vocab_size)]
    for ids, mask in pad_batches(encoded, batch_size, pad):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        last = mask.sum(1) - 1  # right-padded: each prompt's last token
        rows.append(torch.log_softmax(logits[torch.arange(len(ids)), last], -1))
    return torch.cat(rows)


def answers(model, tokenizer, prompts: Sequence[str], options: Sequence[str], batch_size: int = 32) -> list[str]:
    lp = option_logprobs(model, tokenizer, prompts, options, batch_size)
    return [options[int(i)] for i in lp.argmax(-1)]


def known_facts(model, tokenizer, facts: Sequence[Fact], templates: Sequence[str], options: Sequence[str],
                min_share: float = 1.0) -> list[Fact]:
    """The facts the model answers correctly on at least `min_share` of the templates."""
    prompts = [prompt(t, f) for f in facts for t in templates]
    got = answers(model, tokenizer, prompts, options)
    kept = []
    for i, f in enumerate(facts):
        mine = got[i * len(templates):(i + 1) * len(templates)]
        if sum(a == f.answer for a in mine) >= min_share * len(templates):
            kept.append(f)
    return kept


# ---- the edit --------------------------------------------------------------------------------

_MLP = re.compile(r"(?:^|\.)layers\.(\d+)\.mlp\.")


def mlp_parameters(model, layers: Iterable[int]) -> dict[str, torch.nn.Parameter]:
    """The MLP parameters of the given decoder layers (Llama-style names: model.layers.{i}.mlp.*)."""
    wanted = set(layers)
    found = {n: p for n, p in model.named_parameters() if (m := _MLP.search(n)) and int(m.group(1)) in wanted}
    missing = wanted - {int(_MLP.search(n).group(1)) for n in found}
    if missing:
        n_layers = getattr(model.config, "num_hidden_layers", "?")
        raise ValueError(f"edit.layers: no MLP parameters in layer(s) {sorted(missing)} "
                         f"(the model has {n_layers} decoder layers, numbered from 0)")
    return found


def edit_examples(facts: Sequence[Fact], templates: Sequence[str], edited: Fact, new_answer: str) -> list[tuple[str, str]]:
    """(prompt, answer) for every fact and template, the edited fact answered with new_answer."""
    out = []
    for f in facts:
        target = new_answer if f.subject == edited.subject else f.answer
        out += [(prompt(t, f), target) for t in templates]
    return out


def _batch(tokenizer, examples: Sequence[tuple[str, str]]):
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    rows = []
    for p, a in examples:
        p_ids = tokenizer(p, add_special_tokens=True)["input_ids"]
        a_ids = tokenizer(" " + a, add_special_tokens=False)["input_ids"]
        rows.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for j, (x, y) in enumerate(rows):
        ids[j, :len(x)] = torch.tensor(x)
        labels[j, :len(y)] = torch.tensor(y)
        mask[j, :len(x)] = 1
    return ids, mask, labels


@dataclass
class EditLog:
    steps: int
    final_loss: float
    final_penalty: float


def edit(model, tokenizer, examples: Sequence[tuple[str, str]], layers: Iterable[int], *, steps: int = 50,
         learning_rate: float = 1e-3, l1: float = 0.0, l2: float = 0.0, batch_size: int = 32, seed: int = 0,
         bf16_autocast: bool = False) -> EditLog:
    """Fine-tune, in place, only the MLP parameters of `layers` on (prompt, answer) examples
    (loss on the answer tokens), plus l1 * sum|W - W0| + l2 * sum (W - W0)^2 over the trained
    parameters. Everything else is frozen. Adam, seeded batches; the forward pass under bf16
    autocast when asked for and native (finetune.autocast_dtype), the weights and penalty in fp32."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    trained = mlp_parameters(model, layers)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in trained.values():
        p.requires_grad_(True)
    initial = {n: p.detach().clone() for n, p in trained.items()}
    ids, mask, labels = _batch(tokenizer, examples)
    device = next(model.parameters()).device
    opt = torch.optim.Adam(list(trained.values()), lr=learning_rate)
    amp = autocast_dtype(device.type, bf16_autocast)
    model.train()
    loss_v = pen_v = float("nan")
    for _ in range(steps):
        idx = torch.randperm(ids.shape[0], generator=g)[:batch_size]
        with torch.autocast(device_type=device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            out = model(input_ids=ids[idx].to(device), attention_mask=mask[idx].to(device),
                        labels=labels[idx].to(device))
        penalty = torch.zeros((), device=device)
        for n, p in trained.items():
            d = p - initial[n]
            if l1:
                penalty = penalty + l1 * d.abs().sum()
            if l2:
                penalty = penalty + l2 * d.pow(2).sum()
        loss = out.loss + penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_v, pen_v = out.loss.item(), penalty.item()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return EditLog(steps=steps, final_loss=loss_v, final_penalty=pen_v)


# ---- measures --------------------------------------------------------------------------------

def efficacy_specificity(model, tokenizer, facts: Sequence[Fact], templates: Sequence[str], options: Sequence[str],
                         edited: Fact, new_answer: str) -> dict[str, float]:
    """efficacy: share of the edited fact's templates answered with new_answer; specificity:
    share of the other facts' templates still answered with their own answer."""
    ed = answers(model, tokenizer, [prompt(t, edited) for t in templates], options)
    others = [f for f in facts if f.subject != edited.subject]
    got = answers(model, tokenizer, [prompt(t, f) for f in others for t in templates], options)
    want = [f.answer for f in others for _ in templates]
    return {
        "efficacy": sum(a == new_answer for a in ed) / len(ed),
        "specificity": sum(a == w for a, w in zip(got, want)) / len(want) if want else float("nan"),
    }


def neuron_change(base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Per decoder layer with a Llama-style MLP: a vector over its neurons of
    sqrt(||d gate_j||^2 + ||d up_j||^2 + ||d down_:,j||^2)."""
    out = {}
    layers = sorted({int(m.group(1)) for n in base_state if (m := _MLP.search(n))})
    for i in layers:
        total = None
        for part, dim in (("gate_proj", 1), ("up_proj", 1), ("down_proj", 0)):
            name = next((n for n in base_state if n.endswith(f"layers.{i}.mlp.{part}.weight")), None)
            if name is None:
                continue
            d2 = (tuned_state[name].double() - base_state[name].double()).pow(2).sum(dim)
            total = d2 if total is None else total + d2
        if total is not None:
            out[i] = total.sqrt()
    return out


def top_neurons(change: dict[int, torch.Tensor], k: int) -> set[tuple[int, int]]:
    """The k (layer, neuron) pairs that changed most."""
    flat = [(float(v), layer, j) for layer, vec in change.items() for j, v in enumerate(vec.tolist())]
    flat.sort(reverse=True)
    return {(layer, j) for _, layer, j in flat[:k]}


def mean_jaccard(sets: Sequence[set]) -> float:
    """Mean pairwise Jaccard overlap of the sets (1: identical)."""
    pairs = list(itertools.combinations(sets, 2))
    if not pairs:
        return float("nan")
    return sum(len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs) / len(pairs)


# ---- a study: facts x seeds x penalty settings -----------------------------------------------

def new_answer(fact: Fact, options: Sequence[str], seed: int) -> str:
    """The changed answer for an edit: an option other than the fact's own, chosen by seed."""
    from alignlab.seeds import derive_seed

    others = [o for o in options if o != fact.answer]
    return others[derive_seed(seed, "new_answer", fact.subject) % len(others)]


def study(model, tokenizer, facts: Sequence[Fact], edited: Sequence[Fact], templates: Sequence[str],
          options: Sequence[str], *, n_train_templates: int, layers: Sequence[int], penalties: dict[str, dict[str, float]],
          seeds: Sequence[int], steps: int, learning_rate: float, batch_size: int = 32, top_k: int = 50,
          bf16_autocast: bool = False, progress: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every (penalty setting, edited fact, seed): restore the base weights, edit (training on the
    first n_train_templates templates; the others are the paraphrases), measure. Returns row lists:
    `runs` (efficacy on the trained templates and on the paraphrases, specificity, weight change,
    the final loss), `layers` (relative change of each trained layer's MLP per run) and `overlap`
    (per penalty setting: mean Jaccard of the top_k most-changed neurons across seeds, per fact
    then averaged, and across facts, per seed then averaged)."""
    from tqdm import tqdm

    from alignlab import timings

    base_state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    train_t, para_t = list(templates[:n_train_templates]), list(templates[n_train_templates:])
    runs, layer_rows, tops = [], [], {}
    bar = tqdm(total=len(penalties) * len(edited) * len(seeds), desc="edits", disable=not progress)
    for setting, pen in penalties.items():
        for fact in edited:
            target = new_answer(fact, options, seeds[0])
            for seed in seeds:
                model.load_state_dict(base_state)
                with timings.timer(f"edit ({setting})", items=steps):
                    log = edit(model, tokenizer, edit_examples(facts, train_t, fact, target), layers, steps=steps,
                               learning_rate=learning_rate, l1=pen.get("l1", 0.0), l2=pen.get("l2", 0.0),
                               batch_size=batch_size, seed=seed, bf16_autocast=bf16_autocast)
                bar.update()
                with timings.timer("forward (efficacy, specificity)", items=len(facts) * len(templates)):
                    trained = efficacy_specificity(model, tokenizer, facts, train_t, options, fact, target)
                    para = (efficacy_specificity(model, tokenizer, [fact], para_t, options, fact, target)["efficacy"]
                            if para_t else float("nan"))
                state = {n: t.detach() for n, t in model.state_dict().items()}
                w = weight_change.weight_stats(base_state, state)
                runs.append({"setting": setting, "l1": pen.get("l1", 0.0), "l2": pen.get("l2", 0.0),
                             "subject": fact.subject, "answer": fact.answer, "new_answer": target, "seed": seed,
                             "efficacy": trained["efficacy"], "paraphrase_efficacy": para,
                             "specificity": trained["specificity"], "weight_change": weight_change.total_relative_change(w),
                             "final_loss": log.final_loss})
                for r in weight_change.weight_stats_by_layer([r for r in w if r["matrix"].startswith("mlp.")]):
                    if r["layer"] in set(layers):
                        layer_rows.append({"setting": setting, "subject": fact.subject, "seed": seed,
                                           "layer": r["layer"], "relative_change": r["relative_change"]})
                tops[(setting, fact.subject, seed)] = top_neurons(neuron_change(base_state, state), top_k)
    bar.close()
    model.load_state_dict(base_state)
    overlap = []
    for setting in penalties:
        across_seeds = [mean_jaccard([tops[(setting, f.subject, s)] for s in seeds]) for f in edited]
        across_facts = [mean_jaccard([tops[(setting, f.subject, s)] for f in edited]) for s in seeds]
        overlap.append({"setting": setting, "top_k": top_k,
                        "across_seeds": _nanmean(across_seeds), "across_facts": _nanmean(across_facts)})
    return {"runs": runs, "layers": layer_rows, "overlap": overlap}


def _nanmean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")
