"""The engine settings that decide start-up and speed: engine.dtype and engine.compilation."""

import pytest


def test_engine_dtype_and_compilation_choices():
    from alignlab.hardware import native_bf16
    from alignlab.sampling import apply_compilation, resolve_compilation, resolve_dtype

    assert resolve_dtype("float16", on_cpu=True) == "float16"
    assert resolve_dtype("auto", on_cpu=False) == "bfloat16"
    assert resolve_dtype("auto", on_cpu=True) == ("bfloat16" if native_bf16("cpu") else "float32")
    for choice, expected in (("none", {"enforce_eager": True}), ("dynamo", {"compilation_config": {"backend": "eager"}}),
                             ("inductor", {})):
        extra = {}
        apply_compilation(choice, extra)
        assert extra == expected, choice
    assert resolve_compilation("auto", on_cpu=True) == "none"
    assert resolve_compilation("auto", on_cpu=False) == "inductor"
    assert resolve_compilation("dynamo", on_cpu=True) == "dynamo"
    with pytest.raises(ValueError, match="engine.compilation"):
        apply_compilation("eager", {})
