"""Seed derivation: every random choice gets its own seed from (seed, experiment, arm, step, ...)."""

import hashlib


def derive_seed(seed: int, *parts) -> int:
    """A stable 31-bit seed from the global seed and any labels (experiment, arm, step, index...).

    Uses a hash rather than arithmetic so that seeds of neighbouring labels are unrelated and
    adding a new arm never shifts the seeds of existing ones.
    """
    key = "/".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") & 0x7FFFFFFF
