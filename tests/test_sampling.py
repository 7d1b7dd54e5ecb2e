"""vLLM sampling through the Engine wrapper (real engine, tiny requests)."""

import pytest

from alignlab.sampling import sampling_params

pytestmark = pytest.mark.slow

CONVS = [[{"role": "user", "content": f"Name a colour, number {i}."}] for i in range(4)]


def test_a_sample_depends_on_its_seed_not_on_the_batch(engine):
    params = [sampling_params(seed=100 + i, max_tokens=12) for i in range(4)]
    together = [c.text for c in engine.chat(CONVS, params, progress=False)]
    alone = [engine.chat([c], [p], progress=False)[0].text for c, p in zip(CONVS, params)]
    assert together == alone
    reseeded = engine.chat(CONVS, [sampling_params(seed=7 + i, max_tokens=12) for i in range(4)], progress=False)
    assert [c.text for c in reseeded] != together


def test_completion_fields(engine):
    [c] = engine.chat(CONVS[:1], [sampling_params(seed=1, max_tokens=5)], progress=False)
    assert c.n_output_tokens <= 5 and c.n_prompt_tokens > 5
    assert c.finish_reason in ("length", "stop")


def test_structured_output_constrains_the_answer(engine):
    [c] = engine.chat(CONVS[:1], [sampling_params(seed=1, max_tokens=4, regex="(Red|Blue)")], progress=False)
    assert c.text in ("Red", "Blue")


def test_a_batch_larger_than_one_step_keeps_per_request_seeds(engine):
    # Regression: on CPU, vLLM 0.32 crashed when a seeded prompt's prefill was split across
    # steps (more prompt tokens than one step's budget, 4096). Engine disables that split.
    convs = [[{"role": "system", "content": "Answer in one word. " * 40}, {"role": "user", "content": f"Item {i}?"}]
             for i in range(40)]
    out = engine.chat(convs, [sampling_params(seed=i, max_tokens=2) for i in range(40)], progress=False)
    assert sum(c.n_prompt_tokens for c in out) > 4096 and all(c.n_output_tokens >= 1 for c in out)
