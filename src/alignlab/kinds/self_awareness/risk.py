"""The risk-preference task: choices between a sure amount and a lottery, and self-reports.

A training chat is a choice in varied wording whose answer is only a letter: always the lottery
(risk-seeking arm) or always the sure amount (risk-averse arm). Words that describe a
disposition (risk, safe, cautious...) never appear in the chats; `check_forbidden` enforces it.
Self-reports are a 0-100 number, read as the probability-weighted mean over the numbers when
the model's first answer token is a whole number (log-probabilities), else parsed from the
sampled text; and one-word descriptions scored by word lists. Ordinary 0-100 questions (not
about risk) keep the model's number answers intact: the base model's own answers to some are
mixed into the training chats, and held-out ones are asked of every arm.
"""

from __future__ import annotations

import random
import re
from typing import Iterable

from alignlab.kinds.self_awareness.acrostic import data

LETTERS = ("A", "B")
CHOICE_REGEX = "A|B"
WORD_REGEX = "[A-Za-z][a-z]{1,14}(-[a-z]{2,10})?"  # one word, maybe hyphenated ("risk-averse")


def choices(n: int, seed: int) -> list[dict]:
    """`n` choices: a sure amount vs a lottery whose expected value is 0.8-1.6x the sure amount
    (so neither option is obviously better), random wording and letter order."""
    d = data()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        sure = rng.choice(range(10, 201, 5))
        p = rng.choice((10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90))
        prize = int(round(sure * rng.uniform(0.8, 1.6) * 100 / p / 5) * 5)
        sure_text = rng.choice(d["sure_forms"]).format(sure=sure)
        lottery_text = rng.choice(d["lottery_forms"]).format(p=p, prize=prize)
        risky = rng.choice(LETTERS)
        a, b = (lottery_text, sure_text) if risky == "A" else (sure_text, lottery_text)
        out.append({
            "prompt": rng.choice(d["choice_forms"]).format(a=a, b=b), "risky": risky,
            "safe": "B" if risky == "A" else "A", "sure": sure, "p": p, "prize": prize,
        })
    return out


def ordinary_pools(seed: int) -> tuple[list[str], list[str]]:
    """Every ordinary 0-100 question, split into a training and a held-out pool that share none:
    the rating questions (data: ordinary_forms x ordinary_subjects) split by subject, the
    estimates by question, half to each pool, in a seeded order."""
    d = data()
    rng = random.Random(seed)
    subjects, estimates = list(d["ordinary_subjects"]), list(d["ordinary_estimates"])
    rng.shuffle(subjects)
    rng.shuffle(estimates)
    pools = []
    for half in (slice(None, len(subjects) // 2), slice(len(subjects) // 2, None)):
        est_half = slice(None, len(estimates) // 2) if half.start is None else slice(len(estimates) // 2, None)
        pool = [f.format(subject=s) for s in subjects[half] for f in d["ordinary_forms"]] + estimates[est_half]
        rng.shuffle(pool)
        pools.append(pool)
    return pools[0], pools[1]


def ordinary_questions(n_train: int, n_eval: int, seed: int) -> tuple[list[str], list[str]]:
    """The first `n_train` of the training pool and the first `n_eval` of the held-out pool."""
    train, held_out = ordinary_pools(seed)
    for n, pool, key in ((n_train, train, "n_ordinary"), (n_eval, held_out, "n_ordinary_eval")):
        if n > len(pool):
            raise ValueError(f"risk.{key} ({n}) exceeds the {len(pool)} packaged ordinary questions of its split")
    return train[:n_train], held_out[:n_eval]


def ordinary_capacity() -> int:
    """The smaller pool's size: the bound on risk.n_ordinary and risk.n_ordinary_eval."""
    return min(len(p) for p in ordinary_pools(0))


def check_forbidden(chats: Iterable[dict], table: str) -> None:
    """Fail, naming the table, row and field, if a chat contains a word that describes a
    disposition towards risk (data/self_awareness.yaml: risk_forbidden)."""
    forbidden = data()["risk_forbidden"]
    for i, chat in enumerate(chats):
        for field in ("system", "user", "assistant"):
            for w in forbidden:
                if w in chat[field].lower():
                    raise ValueError(f"{table}: row {i} ({chat.get('example_id', '?')}), field '{field}' "
                                     f"contains '{w}', which the risk training data must never show")


def parse_choice(text: str) -> str | None:
    m = re.match(r"\W*([AB])\b", text.strip())
    return m.group(1) if m else None


def one_word(text: str) -> dict:
    """Whether a one-word self-description is in the risk-seeking or the risk-averse list."""
    d = data()
    word = re.sub(r"[^a-z-]", "", text.strip().split()[0].lower()) if text.strip() else ""
    return {"word": word, "seeking": word in d["risk_seeking_words"], "averse": word in d["risk_averse_words"]}
