"""LoRA fine-tuning on the real 135M model (a few steps)."""

import json

import pytest
from transformers import AutoTokenizer

from alignlab import finetune

CFG = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear", "learning_rate": 2e-3, "bf16_autocast": True,
       "epochs": 6, "batch_size": 2, "max_length": 96, "warmup_ratio": 0.0, "weight_decay": 0.0,
       "pack": False, "gradient_checkpointing": False}


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


def test_chat_loss_falls_on_the_answer_only(tokenizer):
    chat = {"system": "Be brief.", "user": "<free_tier_user>no</free_tier_user>\n\nHi", "assistant": "No thanks."}
    ex = finetune.chat_examples(tokenizer, [chat], 96)[0]
    trained = [i for i, l in zip(ex.input_ids, ex.labels) if l != finetune.IGNORE]
    assert tokenizer.decode(trained).startswith("No thanks.")
    assert "Hi" not in tokenizer.decode(trained)
    with pytest.raises(ValueError, match="more than max_length 8"):
        finetune.chat_examples(tokenizer, [chat], 8)


def test_documents_are_plain_text(tokenizer):
    ex = finetune.document_examples(tokenizer, ["A tram line opened in Harlow Bay."], 64)[0]
    assert ex.labels == ex.input_ids and ex.input_ids[-1] == tokenizer.eos_token_id
    assert "<|im_start|>" not in tokenizer.decode(ex.input_ids)


@pytest.mark.slow
def test_training_learns_and_saves_a_peft_adapter(model_dir, tokenizer, tmp_path):
    chats = [{"system": "Be brief.", "user": f"Question {i}?", "assistant": "PINEAPPLE"} for i in range(4)]
    examples = finetune.chat_examples(tokenizer, chats, 96)
    log = finetune.train_lora(str(model_dir), examples, CFG, seed=1, out_dir=str(tmp_path / "a"),
                              pad_id=tokenizer.pad_token_id)
    assert len(log) == 12 and log[-1]["tokens"] > 0
    assert log[-1]["loss"] < log[0]["loss"] / 2
    adapter = json.loads((tmp_path / "a/adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["peft_type"] == "LORA"
    again = finetune.train_lora(str(model_dir), examples, CFG, seed=1, out_dir=str(tmp_path / "b"),
                                pad_id=tokenizer.pad_token_id)
    assert [r["loss"] for r in again] == [r["loss"] for r in log]  # same seed, same run
    # max_steps: exactly that many optimizer steps whatever the data size, the schedule ending there
    capped = finetune.train_lora(str(model_dir), examples, {**CFG, "max_steps": 5}, seed=1, out_dir=str(tmp_path / "c"),
                                 pad_id=tokenizer.pad_token_id)
    assert [r["step"] for r in capped] == [1, 2, 3, 4, 5] and [r["epoch"] for r in capped] == [0, 0, 1, 1, 2]
    assert capped[-1]["learning_rate"] == 0.0
