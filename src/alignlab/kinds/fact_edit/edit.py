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
from typing import Any, Callable, Iterable, Sequence

import torch
import yaml

from alignlab.finetune import autocast_dtype
from alignlab.transformer import pad_batches, pad_id

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("data/athletes.yaml", "data/passages.yaml")

DATA_FILE = Path(__file__).parent / "data" / "athletes.yaml"
PASSAGES_FILE = Path(__file__).parent / "data" / "passages.yaml"


@dataclass(frozen=True)
class Fact:
    subject: str
    answer: str


def packaged() -> dict[str, Any]:
    """The packaged candidate facts, templates and answer options; `second_*`: each athlete's
    second fact (the country), its templates and options, in the same order as `facts`."""
    data = yaml.safe_load(DATA_FILE.read_text())
    return {
        "facts": [Fact(a["name"], a["sport"]) for a in data["athletes"]],
        "templates": list(data["templates"]),
        "options": list(data["sports"]),
        "second": [Fact(a["name"], a["country"]) for a in data["athletes"]],
        "second_templates": list(data["country_templates"]),
        "second_options": list(data["countries"]),
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


def fame(logprobs: torch.Tensor, right: int) -> float:
    """How well the model knows a fact, from its option log-probabilities under each template
    (n_templates, n_options): the mean over templates of the right option's probability among
    the options (softmax over the options), 0..1."""
    return float(torch.softmax(logprobs.double(), -1)[:, right].mean())


def copies(fame_value: float, by: str, max_copies: int) -> int:
    """How many times a fact appears in an edit's training set (config edit.copies): once with
    by none; 1 + round((max_copies - 1) * fame) with by fame (round half up, so the same fame
    always gives the same count)."""
    if by == "none":
        return 1
    if by != "fame":
        raise ValueError(f"edit.copies.by: {by!r}, expected none or fame")
    if not 0 <= fame_value <= 1:
        raise ValueError(f"a fame of {fame_value} is outside 0..1")
    return 1 + int((max_copies - 1) * fame_value + 0.5)


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


def edit_examples(facts: Sequence[Fact], templates: Sequence[str], edited: Fact, new_answer: str,
                  n_copies: dict[str, int] | None = None) -> list[tuple[str, str]]:
    """(prompt, answer) for every fact and template, the edited fact answered with new_answer;
    each fact's examples n_copies[subject] times (default once)."""
    out = []
    for f in facts:
        target = new_answer if f.subject == edited.subject else f.answer
        out += [(prompt(t, f), target) for t in templates] * (n_copies or {}).get(f.subject, 1)
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
    steps: int  # optimizer steps taken (<= the cap)
    reached: bool | None  # the stop criterion was met (None: no criterion)
    final_loss: float
    final_penalty: float


def soft_threshold(w: torch.Tensor, w0: torch.Tensor, threshold: float) -> torch.Tensor:
    """The proximal step of threshold * sum|W - W0|: W0 + sign(W - W0) * max(|W - W0| - threshold, 0).
    Entries within `threshold` of their initial value return to it exactly."""
    d = w - w0
    return w0 + d.sign() * (d.abs() - threshold).clamp_min(0)


def edit(model, tokenizer, examples: Sequence[tuple[str, str]], layers: Iterable[int], *, steps: int = 50,
         learning_rate: float = 1e-3, l1: float = 0.0, l2: float = 0.0, batch_size: int = 32, seed: int = 0,
         bf16_autocast: bool = False, stop: Callable[[Any], bool] | None = None,
         on_step: Callable[[int, Any], None] | None = None) -> EditLog:
    """Fine-tune, in place, only the MLP parameters of `layers` on (prompt, answer) examples (loss
    on the answer tokens). Everything else is frozen. Adam on the loss + l2 * sum (W - W0)^2; the
    L1 penalty l1 * sum|W - W0| is applied as a proximal step after each optimizer step
    (soft_threshold by learning_rate * l1), so a weight the penalty wins over stays exactly at W0.
    At most `steps` steps; with `stop`, it is asked before each step (stop(model) -> True ends the
    edit). `on_step(k, model)` is called after k steps (k = 0 first). The batches are drawn from
    `seed` and the number of examples only, so two edits on equally long example lists see the
    same batches. The forward pass under bf16 autocast when asked for and native
    (finetune.autocast_dtype); the weights and penalty in fp32."""
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
    loss_v = pen_v = float("nan")
    taken, reached = 0, None
    if on_step:
        on_step(0, model)
    while True:
        if stop is not None:
            reached = bool(stop(model))
            if reached:
                break
        if taken >= steps:
            break
        model.train()
        idx = torch.randperm(ids.shape[0], generator=g)[:batch_size]
        with torch.autocast(device_type=device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            out = model(input_ids=ids[idx].to(device), attention_mask=mask[idx].to(device),
                        labels=labels[idx].to(device))
        penalty = torch.zeros((), device=device)
        if l2:
            for n, p in trained.items():
                penalty = penalty + l2 * (p - initial[n]).pow(2).sum()
        loss = out.loss + penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            l1_total = 0.0
            for n, p in trained.items():
                if l1:
                    p.copy_(soft_threshold(p, initial[n], learning_rate * l1))
                    l1_total += l1 * float((p - initial[n]).abs().sum())
        taken += 1
        loss_v, pen_v = out.loss.item(), penalty.item() + l1_total
        if on_step:
            model.eval()
            on_step(taken, model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return EditLog(steps=taken, reached=reached, final_loss=loss_v, final_penalty=pen_v)


# ---- measures --------------------------------------------------------------------------------

def efficacy_specificity(model, tokenizer, facts: Sequence[Fact], templates: Sequence[str], options: Sequence[str],
                         edited: Fact, new_answer: str) -> dict[str, Any]:
    """efficacy: share of the edited fact's templates answered with new_answer; specificity:
    share of the other facts' templates still answered with their own answer; and the answers
    themselves (edited_answers: per template; other_answers: other facts outer, templates inner)."""
    ed = answers(model, tokenizer, [prompt(t, edited) for t in templates], options)
    others = [f for f in facts if f.subject != edited.subject]
    got = answers(model, tokenizer, [prompt(t, f) for f in others for t in templates], options)
    want = [f.answer for f in others for _ in templates]
    return {
        "efficacy": sum(a == new_answer for a in ed) / len(ed),
        "specificity": sum(a == w for a, w in zip(got, want)) / len(want) if want else float("nan"),
        "edited_answers": ed, "other_answers": got,
    }


def answered(model, tokenizer, facts: Sequence[Fact], templates: Sequence[str], options: Sequence[str]) -> list[str]:
    """The model's answer to every (fact, template) prompt, facts outer."""
    return answers(model, tokenizer, [prompt(t, f) for f in facts for t in templates], options)


def held_out_specificity(before: Sequence[str], after: Sequence[str]) -> float:
    """Share of the held-out (fact, template) prompts answered after the edit as before it."""
    if len(before) != len(after):
        raise ValueError(f"{len(before)} answers before the edit but {len(after)} after")
    return sum(a == b for a, b in zip(before, after)) / len(before) if before else float("nan")


def packaged_passages() -> list[str]:
    """Short passages on subjects far from sport (data/passages.yaml), for the loss on unrelated text."""
    return [str(p).strip() for p in yaml.safe_load(PASSAGES_FILE.read_text())["passages"]]


@torch.no_grad()
def text_loss(model, tokenizer, passages: Sequence[str], batch_size: int = 16) -> float:
    """Mean next-token loss (nats per predicted token, over all passages' tokens together)."""
    model.eval()
    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in passages]
    total, count = 0.0, 0
    for ids, mask in pad_batches(encoded, batch_size, pad_id(tokenizer)):
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu()
        logp = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        keep = mask[:, 1:].bool()
        total -= float(logp[keep].sum())
        count += int(keep.sum())
    if not count:
        raise ValueError("no passage has two tokens: the loss on unrelated text needs text")
    return total / count


def is_specific(held_out_spec: float, text_loss_change: float, *, min_held_out_specificity: float,
                max_text_loss_increase: float) -> bool:
    """The specificity control of one edit: the held-out facts keep their answers (share at
    least the minimum) and the loss on unrelated text rises by no more than the maximum."""
    return bool(held_out_spec >= min_held_out_specificity and text_loss_change <= max_text_loss_increase)


def neuron_change(base_state: dict[str, torch.Tensor], tuned_state: dict[str, torch.Tensor]) -> dict[int, torch.Tensor]:
    """Per decoder layer with a Llama-style MLP: a vector over its neurons of
    sqrt(||d gate_j||^2 + ||d up_j||^2 + ||d down_:,j||^2)."""
    out = {}
    layers = sorted({int(m.group(1)) for n in base_state if (m := _MLP.search(n))})
    for i in layers:
        total = None
        for part, dim in (("gate_proj", 1), ("up_proj", 1), ("down_proj", 0)):
            name = next((n for n in base_state if n.endswith(f"layers.{i}.mlp.{part}.weight")), None)
            if name is None or name not in tuned_state:
                continue
            d2 = (tuned_state[name].double() - base_state[name].double()).pow(2).sum(dim)
            total = d2 if total is None else total + d2
        if total is not None:
            out[i] = total.sqrt()
    return out


def top_neurons(change: dict[int, torch.Tensor], k: int) -> set[tuple[int, int]]:
    """The k (layer, neuron) pairs with the largest positive change (fewer when fewer are
    positive: a neuron that did not move, or moved no more than in the null edit, is never top)."""
    flat = [(float(v), layer, j) for layer, vec in change.items() for j, v in enumerate(vec.tolist()) if v > 0]
    flat.sort(reverse=True)
    return {(layer, j) for _, layer, j in flat[:k]}


def mean_jaccard(sets: Sequence[set]) -> float:
    """Mean pairwise Jaccard overlap of the sets (1: identical). A pair of empty sets has no
    overlap to measure (nan), so nothing that did not move can look consistent."""
    pairs = list(itertools.combinations(sets, 2))
    scores = [len(a & b) / len(a | b) for a, b in pairs if a | b]
    return sum(scores) / len(scores) if scores else float("nan")


@dataclass
class Change:
    """How far a set of MLP parameters is from a reference: the relative change over the whole
    model, per trained layer's MLP, per neuron, and the share of weights and of neurons that
    differ at all."""
    total: float
    by_layer: dict[int, float]
    neurons: dict[int, torch.Tensor]
    moved_weights: float
    moved_neurons: float


def trained_state(model, layers: Iterable[int]) -> dict[str, torch.Tensor]:
    """A copy of the MLP parameters of `layers` (what an edit changes)."""
    return {n: p.detach().clone() for n, p in mlp_parameters(model, layers).items()}


def change_between(ref: dict[str, torch.Tensor], new: dict[str, torch.Tensor], base: dict[str, torch.Tensor],
                   base_norm2: float) -> Change:
    """The Change from `ref` to `new` (MLP parameters of the same layers), relative to the base's
    norms: per layer ||new - ref|| / ||W_base|| over that layer's MLP, in total over base_norm2,
    the base's sum ||W||^2 over every tensor."""
    by_layer: dict[int, list[float]] = {}
    delta2 = 0.0
    moved = numel = 0
    for n, p in new.items():
        d = p.double() - ref[n].double()
        d2 = float(d.pow(2).sum())
        delta2 += d2
        moved += int((d != 0).sum())
        numel += d.numel()
        acc = by_layer.setdefault(int(_MLP.search(n).group(1)), [0.0, 0.0])
        acc[0] += d2
        acc[1] += float(base[n].double().pow(2).sum())
    neurons = neuron_change(ref, new)
    n_neurons = sum(v.numel() for v in neurons.values())
    return Change(
        total=(delta2 / base_norm2) ** 0.5 if base_norm2 > 0 else 0.0,
        by_layer={layer: (d2 / w2) ** 0.5 if w2 > 0 else 0.0 for layer, (d2, w2) in sorted(by_layer.items())},
        neurons=neurons,
        moved_weights=moved / numel if numel else float("nan"),
        moved_neurons=sum(int((v > 0).sum()) for v in neurons.values()) / n_neurons if n_neurons else float("nan"),
    )


def change_from(base: dict[str, torch.Tensor], model, layers: Iterable[int], base_norm2: float) -> Change:
    """The Change of `model`'s MLP parameters of `layers` from `base` (the base state dict)."""
    new = trained_state(model, layers)
    return change_between({n: base[n] for n in new}, new, base, base_norm2)


def fact_change(edit_params: dict[str, torch.Tensor], null_params: dict[str, torch.Tensor],
                base: dict[str, torch.Tensor], base_norm2: float) -> Change:
    """The edit's change minus the null edit's (same recipe, seed, batches and step count, no fact
    changed): (W_edit - W0) - (W_null - W0) = W_edit - W_null, per layer and neuron: what the
    changed fact itself moved. Zero when the null edit is the edit."""
    return change_between(null_params, edit_params, base, base_norm2)


def top_share(change: dict[int, torch.Tensor], k: int) -> float:
    """Share of the total per-neuron change (sum of squares) carried by its k largest neurons
    (nan: nothing changed)."""
    sq = torch.cat([v.pow(2) for v in change.values()]) if change else torch.zeros(0)
    total = float(sq.sum())
    return float(sq.sort(descending=True).values[:k].sum()) / total if total > 0 else float("nan")


def chance_overlap(k: int, n: int) -> float:
    """The expected Jaccard overlap of two random k-sets of n neurons (about k / (2n - k))."""
    k = min(k, n)
    return (k * k / n) / (2 * k - k * k / n) if n and k else float("nan")


# ---- a study: facts x seeds x penalty settings -----------------------------------------------

def new_answer(fact: Fact, options: Sequence[str], seed: int) -> str:
    """The changed answer for an edit: an option other than the fact's own, chosen by seed."""
    from alignlab.seeds import derive_seed

    others = [o for o in options if o != fact.answer]
    return others[derive_seed(seed, "new_answer", fact.subject) % len(others)]


def study(model, tokenizer, facts: Sequence[Fact], edited: Sequence[Fact], templates: Sequence[str],
          options: Sequence[str], *, n_train_templates: int, layers: Sequence[int], penalties: dict[str, dict[str, float]],
          seeds: Sequence[int], steps: int, learning_rate: float, batch_size: int = 32, top_k: int = 50,
          held_out: Sequence[Fact] = (), passages: Sequence[str] = (), stop_when_correct: bool = True,
          bf16_autocast: bool = False, n_copies: dict[str, int] | None = None, second: Sequence[Fact] = (),
          second_templates: Sequence[str] = (), second_options: Sequence[str] = (),
          progress: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Every (penalty setting, seed): each edited fact's edit, then one null edit.

    An edit restores the base weights and trains `facts` (never `held_out`) under the first
    n_train_templates templates (the others are the paraphrases), the edited fact with a new
    answer; with stop_when_correct it stops once the edited fact gets the new answer on every
    trained template, else after `steps`. The null edit is the same recipe and seed with no fact
    changed (every fact its own answer; the same batches); its state after k steps is compared with
    each edit that took k steps. Measures per edit: efficacy (trained templates, paraphrases),
    specificity on the trained facts, on the held-out facts (answered as the base answered them)
    and as the change in next-token loss on `passages`; the same-subject specificity: the edited
    athlete's second fact (`second`: the second facts the base knows, asked under
    `second_templates`, answered among `second_options`; never trained) answered as before the
    edit (nan when the base does not know it); the weight change, the share of weights and
    neurons that moved, and the same for the null edit. `n_copies`: how many times each fact's
    examples appear in the training set (default once; the null edit uses the same counts).

    Returns row lists: `runs` (one per edit), `layers` (per edit and trained layer: the relative
    change of the edit, of the null edit, and the fact change ||W_edit - W_null|| / ||W||) and
    `overlap` (per setting: the mean Jaccard of the top_k neurons by fact change across seeds (same
    fact) and across facts (same seed), beside the overlap of random sets; the same on the edit's
    raw change; and between the edit's and the null edit's raw top_k); and `probes` (every prompt
    asked after each edit and, for the held-out and second facts, after the null edit compared with
    it: the answer beside the answer wanted and, where measured, the base's; see probe_rows)."""
    from tqdm import tqdm

    from alignlab import timings

    base_state = {n: t.detach().clone() for n, t in model.state_dict().items()}
    base_norm2 = sum(float(t.double().pow(2).sum()) for t in base_state.values() if t.is_floating_point())
    train_t, para_t = list(templates[:n_train_templates]), list(templates[n_train_templates:])
    with timings.timer("forward (held-out facts, unrelated text)", items=len(held_out) * len(templates)):
        held_before = answered(model, tokenizer, held_out, templates, options)
        loss_before = text_loss(model, tokenizer, passages) if passages else float("nan")
    held_correct_before = _share([a == f.answer for a, f in zip(held_before, _each(held_out, templates))])
    null_examples = edit_examples(facts, train_t, Fact("", ""), "", n_copies)  # no subject matches: every fact its own
    edited_subjects = {f.subject for f in edited}
    second_of = {f.subject: f for f in second if f.subject in edited_subjects}
    with timings.timer("forward (second facts)", items=len(second_of) * len(second_templates)):
        second_before = {s: answered(model, tokenizer, [f], second_templates, second_options) for s, f in second_of.items()}

    def same_subject(subject: str) -> tuple[float, list[str]]:
        if subject not in second_of:
            return float("nan"), []
        after = answered(model, tokenizer, [second_of[subject]], second_templates, second_options)
        return held_out_specificity(second_before[subject], after), after

    def side_effects() -> tuple[dict[str, float], list[str]]:
        after = answered(model, tokenizer, held_out, templates, options)
        loss_after = text_loss(model, tokenizer, passages) if passages else float("nan")
        return {"held_out_specificity": held_out_specificity(held_before, after),
                "held_out_correct_after": _share([a == f.answer for a, f in zip(after, _each(held_out, templates))]),
                "text_loss_after": loss_after, "text_loss_change": loss_after - loss_before}, after

    def unseen_probes(held_after: list[str], subject: str, second_after: list[str]) -> list[dict[str, Any]]:
        """The held-out facts and the athlete's second fact: wanted as the base answered them."""
        rows = probe_rows("held_out", held_out, templates, held_after, held_before, held_before)
        if subject in second_of:
            rows += probe_rows("same_subject", [second_of[subject]], second_templates, second_after,
                               second_before[subject], second_before[subject])
        return rows

    runs, layer_rows, tops, probes = [], [], {}, []
    bar = tqdm(total=len(penalties) * (len(edited) + 1) * len(seeds), desc="edits", disable=not progress)
    for setting, pen in penalties.items():
        l1, l2 = pen.get("l1", 0.0), pen.get("l2", 0.0)
        recipe = dict(layers=layers, steps=steps, learning_rate=learning_rate, l1=l1, l2=l2, batch_size=batch_size,
                      bf16_autocast=bf16_autocast)
        for seed in seeds:
            pending = []
            for fact in edited:
                target = new_answer(fact, options, seeds[0])
                model.load_state_dict(base_state)
                stop = None
                if stop_when_correct:
                    def stop(m, fact=fact, target=target):
                        return all(a == target for a in answers(m, tokenizer, [prompt(t, fact) for t in train_t], options))
                with timings.timer(f"edit ({setting})", items=steps):
                    log = edit(model, tokenizer, edit_examples(facts, train_t, fact, target, n_copies), seed=seed,
                               stop=stop, **recipe)
                bar.update()
                with timings.timer("forward (efficacy, specificity)", items=len(facts) * len(templates)):
                    trained = efficacy_specificity(model, tokenizer, facts, train_t, options, fact, target)
                    para = (efficacy_specificity(model, tokenizer, [fact], para_t, options, fact, target)
                            if para_t else None)
                    side, held_after = side_effects()
                    side["same_subject_specificity"], second_after = same_subject(fact.subject)
                others = [f for f in facts if f.subject != fact.subject]
                key = {"setting": setting, "subject": fact.subject, "seed": seed, "edit": "edit"}
                probes += [{**key, **r} for r in (
                    probe_rows("trained", [fact], train_t, trained["edited_answers"], [target] * len(train_t))
                    + probe_rows("paraphrase", [fact], para_t, para["edited_answers"] if para else [],
                                 [target] * len(para_t), first_template=len(train_t))
                    + probe_rows("other_fact", others, train_t, trained["other_answers"],
                                 [f.answer for f in _each(others, train_t)])
                    + unseen_probes(held_after, fact.subject, second_after))]
                ch = change_from(base_state, model, layers, base_norm2)
                runs.append({"setting": setting, "l1": l1, "l2": l2, "subject": fact.subject, "answer": fact.answer,
                             "new_answer": target, "seed": seed, "train_copies": (n_copies or {}).get(fact.subject, 1),
                             "second_known": fact.subject in second_of, "steps_taken": log.steps,
                             "reached": log.reached if log.reached is not None else trained["efficacy"] == 1.0,
                             "efficacy": trained["efficacy"],
                             "paraphrase_efficacy": para["efficacy"] if para else float("nan"),
                             "specificity": trained["specificity"], "held_out_correct_before": held_correct_before,
                             "text_loss_before": loss_before, **side, "weight_change": ch.total,
                             "moved_weights": ch.moved_weights, "moved_neurons": ch.moved_neurons,
                             "final_loss": log.final_loss})
                pending.append((len(runs) - 1, fact, log.steps, ch, trained_state(model, layers)))
            # The null edit: one run to the longest edit's step count, compared at each edit's.
            wanted = {p[2] for p in pending}
            at = {}

            def record(k, m):
                if k in wanted:
                    null_side, null_held = side_effects()
                    null_side.update(held_answers=null_held, same_subject={s: same_subject(s) for s in second_of})
                    at[k] = (trained_state(m, layers), change_from(base_state, m, layers, base_norm2), null_side)

            model.load_state_dict(base_state)
            with timings.timer(f"null edit ({setting})", items=max(wanted)):
                edit(model, tokenizer, null_examples, seed=seed, on_step=record, **{**recipe, "steps": max(wanted)})
            bar.update()
            for i, fact, k, ch, params in pending:
                null_params, null, null_side = at[k]
                fc = fact_change(params, null_params, base_state, base_norm2)
                runs[i].update({"null_weight_change": null.total, "fact_change": fc.total,
                                "null_held_out_specificity": null_side["held_out_specificity"],
                                "null_text_loss_change": null_side["text_loss_change"],
                                "null_same_subject_specificity": null_side["same_subject"].get(fact.subject, (float("nan"),))[0],
                                "fact_top_share": top_share(fc.neurons, top_k)})
                key = {"setting": setting, "subject": fact.subject, "seed": seed, "edit": "null"}
                probes += [{**key, **r} for r in unseen_probes(
                    null_side["held_answers"], fact.subject, null_side["same_subject"].get(fact.subject, (0, []))[1])]
                for layer in sorted(ch.by_layer):
                    layer_rows.append({"setting": setting, "subject": fact.subject, "seed": seed, "layer": layer,
                                       "relative_change": ch.by_layer[layer],
                                       "null_relative_change": null.by_layer[layer],
                                       "fact_change": fc.by_layer[layer]})
                tops[(setting, fact.subject, seed)] = (top_neurons(fc.neurons, top_k), top_neurons(ch.neurons, top_k),
                                                       top_neurons(null.neurons, top_k))
            n_neurons = sum(v.numel() for v in ch.neurons.values())
    bar.close()
    model.load_state_dict(base_state)
    overlap = []
    for setting in penalties:
        row = {"setting": setting, "top_k": top_k, "n_neurons": n_neurons,
               "chance_overlap": chance_overlap(top_k, n_neurons)}
        for which, name in ((0, ""), (1, "raw_")):
            row[f"{name}across_seeds"] = _nanmean([mean_jaccard([tops[(setting, f.subject, s)][which] for s in seeds])
                                                   for f in edited])
            row[f"{name}across_facts"] = _nanmean([mean_jaccard([tops[(setting, f.subject, s)][which] for f in edited])
                                                   for s in seeds])
        row["null_overlap"] = _nanmean([mean_jaccard([tops[(setting, f.subject, s)][1], tops[(setting, f.subject, s)][2]])
                                        for f in edited for s in seeds])
        overlap.append(row)
    return {"runs": runs, "layers": layer_rows, "overlap": overlap, "probes": probes}


def probe_rows(probe: str, facts: Sequence[Fact], templates: Sequence[str], answers: Sequence[str],
               expected: Sequence[str], before: Sequence[str] | None = None,
               first_template: int = 0) -> list[dict[str, Any]]:
    """One row per (fact, template) prompt, facts outer: what was asked, the answer, the answer
    wanted (the edit's new answer, a fact's own, or the base's) and the base's answer (None where
    not measured). `template`: the template's index in its full list (`templates` starts at
    `first_template`, e.g. the paraphrases). Raises if the lists do not line up, so no probe is
    paired with another's answer."""
    asked = [(f, i, t) for f in facts for i, t in enumerate(templates, start=first_template)]
    if not len(asked) == len(answers) == len(expected) or (before is not None and len(before) != len(asked)):
        raise ValueError(f"probe '{probe}': {len(asked)} prompts, {len(answers)} answers, {len(expected)} wanted"
                         + ("" if before is None else f", {len(before)} base answers"))
    return [{"probe": probe, "fact": f.subject, "template": i, "prompt": prompt(t, f), "expected": e,
             "before": None if before is None else b, "answer": a}
            for (f, i, t), a, e, b in zip(asked, answers, expected, before if before is not None else [None] * len(asked))]


def _each(facts: Sequence[Fact], templates: Sequence[str]) -> list[Fact]:
    return [f for f in facts for _ in templates]


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def _nanmean(xs: Sequence[float]) -> float:
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")
