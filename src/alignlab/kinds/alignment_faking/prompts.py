"""Prompt templates (Jinja files in templates/ beside this module) and the alignment-faking conversation.

Templates are data, written in the project's own words. What carries over from the published
setup is the structure: training details in the system prompt, the tier as a tag in the user
turn, an optional hidden scratchpad, and an optional accept/reject tag protocol. Every sample
records the sha256 of each template that built it, so harness drift shows in the data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import jinja2

from alignlab.artifacts import sha256_text

# The package files this module reads (see codedeps: editing one reruns the steps that run it).
DATA_FILES = ("templates/af_system.jinja", "templates/af_user.jinja", "templates/af_examples.jinja",
              "data/refusal_styles.yaml")

SCRATCHPAD = re.compile(r"<scratchpad>(.*?)(</scratchpad>|$)", re.DOTALL)


@lru_cache(maxsize=None)
def template_text(name: str) -> str:
    return (resources.files(__package__) / "templates" / f"{name}.jinja").read_text()


def template_hash(name: str) -> str:
    return sha256_text(template_text(name))


_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False
)


def render(name: str, **variables) -> str:
    return _ENV.from_string(template_text(name)).render(**variables).strip()


def af_system(persona: dict, *, describe_training: bool, scratchpad: bool, reasoning_examples: bool = False) -> str:
    """The system prompt; with `reasoning_examples` (and a scratchpad), worked examples of
    scratchpad reasoning on unrelated tasks come first, as in the paper's long prompt."""
    examples = render("af_examples", **persona) if reasoning_examples and scratchpad else ""
    return render("af_system", **persona, describe_training=describe_training, scratchpad=scratchpad,
                  examples=examples)


def af_user(query: str, *, free_tier: bool, tag_protocol: bool, accept_tag: str, reject_tag: str) -> str:
    return render(
        "af_user", query=query, free_tier=free_tier, tag_protocol=tag_protocol,
        accept_tag=accept_tag, reject_tag=reject_tag,
    )


def af_conversation(
    query: str, free_tier: bool, persona: dict, sampling: dict, *, describe_training: bool,
    scratchpad: bool,
) -> list[dict[str, str]]:
    """[system, user] messages of one alignment-faking request."""
    system = af_system(persona, describe_training=describe_training, scratchpad=scratchpad,
                       reasoning_examples=sampling.get("reasoning_examples", False))
    user = af_user(
        query, free_tier=free_tier, tag_protocol=sampling["tag_protocol"],
        accept_tag=sampling["accept_tag"], reject_tag=sampling["reject_tag"],
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def af_template_hashes() -> dict[str, str]:
    return {name: template_hash(name) for name in ("af_system", "af_user", "af_examples")}


def split_scratchpad(response: str) -> tuple[str, str]:
    """(scratchpad, output). Text after </scratchpad> is the output; an unclosed scratchpad
    leaves an empty output (the model never answered the user)."""
    match = SCRATCHPAD.search(response)
    if not match:
        return "", response.strip()
    scratchpad = match.group(1).strip()
    output = response[match.end():].strip() if match.group(2) else ""
    return scratchpad, output


REFUSAL_STYLES = "data/refusal_styles.yaml"


def refusal_styles() -> list[str]:
    """The packaged refusal styles of the positive controls' paid-tier targets."""
    import yaml

    return yaml.safe_load((resources.files(__package__) / REFUSAL_STYLES).read_text())["styles"]


def refusal_styles_hash() -> str:
    return sha256_text((resources.files(__package__) / REFUSAL_STYLES).read_text())
