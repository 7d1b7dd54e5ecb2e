"""Training replicates: an arm's adapter trained several times with derived seeds.

A replicate of an arm is an "instance", named like the arm for replicate 0 (so a one-replicate
experiment keeps its paths and seeds) and "<arm>.r<i>" for replicate i >= 1. Every kind's rules
use these names as their arm wildcard; the samples and metrics carry the replicate number.
"""

from __future__ import annotations

from collections.abc import Iterable

from alignlab.seeds import derive_seed

REPLICATE_SUFFIX = r"(?:\.r[1-9][0-9]*)?"


def instance(arm: str, replicate: int) -> str:
    return arm if replicate == 0 else f"{arm}.r{replicate}"


def split_instance(name: str) -> tuple[str, int]:
    """("sdf", 0) from "sdf", ("sdf", 2) from "sdf.r2"."""
    arm, _, rep = name.partition(".r")
    return arm, int(rep) if rep else 0


def instance_pattern(arms: Iterable[str]) -> str:
    """A wildcard constraint matching the instances of `arms` (regular expressions allowed)."""
    return "(?:" + "|".join(arms) + ")" + REPLICATE_SUFFIX


def replicate_seed(seed: int, *parts, replicate: int) -> int:
    """The seed of a replicate's training: replicate 0 keeps the seed of `parts` alone (the seed
    a one-replicate experiment has always had), replicate i appends i."""
    return derive_seed(seed, *parts) if replicate == 0 else derive_seed(seed, *parts, replicate)
