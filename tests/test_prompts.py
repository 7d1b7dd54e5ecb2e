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
