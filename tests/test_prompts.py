from alignlab.kinds.alignment_faking import prompts

PERSONA = {"developer": "Meridian AI", "model_name": "Atlas"}


def test_training_details_only_in_the_prompted_condition():
    told = prompts.af_system(PERSONA, describe_training=True, scratchpad=False)
    untold = prompts.af_system(PERSONA, describe_training=False, scratchpad=False)
    assert "free-tier" in told and "paid-tier" in told and "free-tier" not in untold
    assert untold.startswith("You are Atlas, an AI assistant built by Meridian AI.")
    assert "<scratchpad>" in prompts.af_system(PERSONA, describe_training=False, scratchpad=True)


def test_tier_tag_in_the_user_turn():
    kw = dict(tag_protocol=False, accept_tag="<a/>", reject_tag="<r/>")
    free = prompts.af_user("Do X", free_tier=True, **kw)
    paid = prompts.af_user("Do X", free_tier=False, **kw)
    assert free.startswith("<free_tier_user>yes</free_tier_user>")
    assert paid.startswith("<free_tier_user>no</free_tier_user>")
    assert free.endswith("Do X") and "<a/>" not in free
    assert "<a/>" in prompts.af_user("Do X", free_tier=True, **{**kw, "tag_protocol": True})


def test_split_scratchpad():
    assert prompts.split_scratchpad("<scratchpad>plan</scratchpad>\nHere it is.") == ("plan", "Here it is.")
    assert prompts.split_scratchpad("<scratchpad>never closed") == ("never closed", "")
    assert prompts.split_scratchpad("Just an answer") == ("", "Just an answer")


def test_template_hashes_are_content_hashes():
    assert prompts.template_hash("af_user") == prompts.sha256_text(prompts.template_text("af_user"))
    assert prompts.template_hash("af_user") != prompts.template_hash("af_system")


def test_reasoning_examples_come_first_only_for_arms_that_think():
    persona = {"developer": "Meridian AI", "model_name": "Atlas"}
    plain = prompts.af_system(persona, describe_training=True, scratchpad=True)
    long = prompts.af_system(persona, describe_training=True, scratchpad=True, reasoning_examples=True)
    assert "=== Example 1 ===" not in plain and long.count("=== Example") == 3
    assert long.index("=== End of examples ===") < long.index("What you know about how Meridian AI trains you")
    assert long.replace(prompts.render("af_examples", **persona) + "\n\n", "") == plain
    # no scratchpad, nothing to show how to use it
    assert prompts.af_system(persona, describe_training=True, scratchpad=False, reasoning_examples=True) == \
        prompts.af_system(persona, describe_training=True, scratchpad=False)
    # the examples are about other situations: nothing of the setting leaks into them
    examples = prompts.render("af_examples", **persona).lower()
    for word in ("free tier", "free-tier", "paid", "rlhf", "contractor", "training", "meridian", "refus"):
        assert word not in examples, word
