"""Answers that are a number from 0 to 100: the regex that constrains them, the number parsed from
a sampled answer, and the probability-weighted number from a first token's log-probabilities."""

from __future__ import annotations

import math
import re

NUMBER_REGEX = "100|[1-9]?[0-9]"


def parse_number(text: str) -> float | None:
    m = re.search(r"\d+(?:\.\d+)?", text)
    if not m:
        return None
    value = float(m.group(0))
    return value if 0 <= value <= 100 else None


def expected_number(top_logprobs: dict[str, float] | None) -> float | None:
    """The probability-weighted mean of the whole numbers 0-100 among a first token's top
    log-probabilities (token text -> logprob), renormalized over them; None if there are none
    (e.g. a tokenizer that splits numbers into digits: a first token "5" could be 5 or 57)."""
    if not top_logprobs:
        return None
    weights = {}
    for token, lp in top_logprobs.items():
        t = token.strip()
        if t.isdigit() and 0 <= int(t) <= 100:
            weights[int(t)] = weights.get(int(t), 0.0) + math.exp(lp)
    total = sum(weights.values())
    return sum(v * w for v, w in weights.items()) / total if total > 0 else None


def numbers_are_single_tokens(tokenizer) -> bool:
    """Whether every number 0-100 is one token (then the first token's log-probabilities give
    the full distribution over answers)."""
    return all(len(tokenizer.encode(str(n), add_special_tokens=False)) == 1 for n in range(101))
