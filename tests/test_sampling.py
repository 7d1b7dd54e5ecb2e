"""vLLM sampling through the Engine wrapper (real engine, tiny requests)."""

import pytest

from alignlab.sampling import sampling_params

pytestmark = pytest.mark.slow

CONVS = [[{"role": "user", "content": f"Name a colour, number {i}."}] for i in range(4)]


def test_a_batch_resampled_gives_the_same_samples_and_another_seed_others(engine):
    # Every call starts from an empty prefix cache (a cached prefix is computed along another
    # path, and in bf16 that flips tokens), so the second pass is computed as the first was.
    # (What is not asserted: a request sampled alone or in another batch gives the same text.
    # On CPU vLLM's arithmetic depends on the batch, and close calls flip; see README.)
    convs = [[{"role": "system", "content": "Answer briefly and plainly. " * 60}, *conv] for conv in CONVS]
    params = [sampling_params(seed=100 + i, max_tokens=12) for i in range(4)]
    first = engine.chat(convs, params, progress=False)
    again = engine.chat(convs, params, progress=False)
    assert [c.text for c in first] == [c.text for c in again]
    assert [c.n_cached_tokens for c in again] == [c.n_cached_tokens for c in first]
    reseeded = engine.chat(convs, [sampling_params(seed=7 + i, max_tokens=12) for i in range(4)], progress=False)
    assert [c.text for c in reseeded] != [c.text for c in first]


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
    assert sum(c.n_cached_tokens for c in out) > 0  # within a call, later steps reuse the prefix


FRESH_ENGINE = """
import json, sys
from alignlab.sampling import Engine, sampling_params
convs = [[{"role": "user", "content": f"Name a colour, number {i}."}] for i in range(4)]
engine = Engine(sys.argv[1], kv_cache_gib=1.0, max_model_len=2048)  # as the session engine
print("TEXTS " + json.dumps([c.text for c in engine.chat(convs, [sampling_params(seed=100 + i, max_tokens=12) for i in range(4)], progress=False)]))
"""


def test_swapped_weights_serve_like_a_fresh_engine(engine, model_dir, tmp_path):
    """engine.lora: merge serves each fine-tuned arm by reloading merged weights into the
    running engine; its samples must be those of an engine started on the merged folder."""
    import json
    import subprocess
    import sys

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    other = tmp_path / "other"
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a different model of the same shape, as a merged adapter would be
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embed" not in name:
                p.add_((torch.randn(p.shape, generator=gen) * p.float().std() * 0.3).to(p.dtype))
    model.save_pretrained(other)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(other)

    params = [sampling_params(seed=100 + i, max_tokens=12) for i in range(4)]
    before = [c.text for c in engine.chat(CONVS, params, progress=False)]
    try:
        engine.load_weights(str(other))
        swapped = [c.text for c in engine.chat(CONVS, params, progress=False)]
    finally:
        engine.load_weights(str(model_dir))
    assert [c.text for c in engine.chat(CONVS, params, progress=False)] == before  # restored
    assert swapped != before
    proc = subprocess.run([sys.executable, "-c", FRESH_ENGINE, str(other)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("TEXTS "))[6:])
    assert swapped == fresh

