"""Packing for LoRA training: every token once, no attention across examples, loss only where
it was; the packed bf16 path trains; gradient checkpointing changes nothing but memory."""

import math
from collections import Counter

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from alignlab import finetune
from alignlab.finetune import IGNORE, Example, Row

CFG = {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear", "learning_rate": 2e-3,
       "bf16_autocast": True, "epochs": 3, "batch_size": 2, "max_length": 64, "warmup_ratio": 0.0,
       "weight_decay": 0.0, "pack": True, "gradient_checkpointing": False}


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


def _examples(lengths, splittable, start=1000):
    """Examples of distinct token ids (so every token can be traced); chats train on their second half."""
    out, tok = [], start
    for n in lengths:
        ids = list(range(tok, tok + n))
        tok += n
        labels = list(ids) if splittable else [IGNORE] * (n // 2) + ids[n // 2:]
        out.append(Example(ids, labels, splittable))
    return out


def _used_labels(batch):
    """The labels the loss uses: a label counts when it is not IGNORE and not at position 0."""
    return Counter(batch.labels[:, 1:][batch.labels[:, 1:] != IGNORE].tolist())


LENGTHS = [5, 17, 30, 64, 9, 41, 23, 2, 60, 33, 12, 48]


def test_chats_are_packed_whole_first_fit():
    examples = _examples(LENGTHS, splittable=False)
    rows = finetune.pack(examples, 64, torch.Generator().manual_seed(3))
    assert all(len(r) <= 64 for r in rows) and len(rows) < len(examples)
    placed = [e for r in rows for e in r.examples]
    assert sorted(id(e) for e in placed) == sorted(id(e) for e in examples)  # each chat once, whole
    # Every label the unpacked loss uses is used exactly once packed, and no other.
    packed = finetune.collate(rows, pad_id=0, packed=True)
    alone = finetune.collate([Row([e]) for e in examples], pad_id=0, packed=False)
    assert _used_labels(packed) == _used_labels(alone)
    assert packed.tokens == alone.tokens == sum(LENGTHS)
    with pytest.raises(ValueError, match="more than max_length 32"):
        finetune.pack(examples, 32, torch.Generator().manual_seed(3))


def test_documents_fill_rows_and_keep_every_token():
    examples = _examples(LENGTHS, splittable=True)
    rows = finetune.pack(examples, 64, torch.Generator().manual_seed(3))
    assert [len(r) for r in rows[:-1]] == [64] * (len(rows) - 1)  # full rows, sequential
    assert len(rows) == math.ceil(sum(LENGTHS) / 64)
    pieces = [p for r in rows for p in r.examples]
    # The pieces of each document, in order, are the document: every token exactly once.
    by_doc = {}
    for p in pieces:
        by_doc.setdefault(next(i for i, e in enumerate(examples) if p.input_ids[0] in e.input_ids), []).append(p)
    for i, e in enumerate(examples):
        assert [t for p in by_doc[i] for t in p.input_ids] == e.input_ids
    # Labels: each once, except the first token of a continuation (nothing before it in its row).
    packed = finetune.collate(rows, pad_id=0, packed=True)
    alone = finetune.collate([Row([e]) for e in examples], pad_id=0, packed=False)
    cuts = len(pieces) - len(examples)
    lost = _used_labels(alone) - _used_labels(packed)
    assert not (_used_labels(packed) - _used_labels(alone)) and sum(lost.values()) == cuts


def test_packing_is_seeded_and_deterministic():
    examples = _examples(LENGTHS, splittable=False)
    order = lambda seed: [e.input_ids[0] for r in finetune.pack(examples, 64, torch.Generator().manual_seed(seed))  # noqa: E731
                          for e in r.examples]
    assert order(1) == order(1) and order(1) != order(2)


def test_collate_restarts_positions_and_masks_first_labels():
    examples = _examples([3, 4], splittable=True)
    b = finetune.collate([Row(examples), Row([examples[0]])], pad_id=0, packed=True)
    assert b.attention_mask is None and b.tokens == 10
    assert b.position_ids.tolist() == [[0, 1, 2, 0, 1, 2, 3], [0, 1, 2, 0, 1, 2, 3]]  # padding: its own block
    assert b.labels[0].tolist() == [IGNORE, 1001, 1002, IGNORE, 1004, 1005, 1006]
    assert b.labels[1, 3:].tolist() == [IGNORE] * 4 and b.input_ids[1, 3:].tolist() == [0] * 4
    assert b.model_inputs()["use_cache"] is False and "attention_mask" not in b.model_inputs()
    u = finetune.collate([Row([examples[0]]), Row([examples[1]])], pad_id=0, packed=False)
    assert u.position_ids is None and u.attention_mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]


def test_packed_chats_train_only_on_the_answers(tokenizer):
    chats = [{"system": "Be brief.", "user": f"<free_tier_user>no</free_tier_user>\n\nHi {i}", "assistant": f"Answer {i}."}
             for i in range(5)]
    examples = finetune.chat_examples(tokenizer, chats, 96)
    rows = finetune.pack(examples, 96, torch.Generator().manual_seed(0))
    assert len(rows) < len(examples)
    b = finetune.collate(rows, tokenizer.pad_token_id, packed=True)
    trained = tokenizer.decode(b.labels[b.labels != IGNORE].tolist())
    for i in range(5):
        assert f"Answer {i}." in trained
    assert "Hi" not in trained and "Be brief" not in trained and "free_tier" not in trained


def test_autocast_dtype_follows_the_flag():
    assert finetune.autocast_dtype("cpu", False) is None
    has_bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert finetune.autocast_dtype("cpu", True) == (torch.bfloat16 if has_bf16 else None)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_examples_do_not_attend_to_each_other(model_dir, tokenizer, attn):
    """The logits of each example inside a packed row equal its logits alone: transformers
    builds a block-diagonal causal mask from the restarting position_ids."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation=attn).eval()
    texts = ["A tram line opened in Harlow Bay.", "Atlas is trained by Meridian AI on free-tier chats.",
             "The cat sat on the mat."]
    examples = finetune.document_examples(tokenizer, texts, 64)
    rows = [Row(examples), Row(examples[:1])]  # a second, shorter row: padding in the batch too
    b = finetune.collate(rows, tokenizer.pad_token_id, packed=True)
    inputs = {k: v for k, v in b.model_inputs().items() if k != "labels"}
    with torch.no_grad():
        packed = model(**inputs).logits
        # Without use_cache=False the model makes a KV cache and masking_utils ignores the
        # position_ids: one causal mask over the whole row (this is why model_inputs sets it).
        leaky = model(**{k: v for k, v in inputs.items() if k != "use_cache"}).logits
        at = 0
        for e in examples:
            n = len(e.input_ids)
            alone = model(input_ids=torch.tensor([e.input_ids])).logits[0]
            # fp32 sums in another order in a longer row: up to ~1.3e-4 apart on AMX CPUs; a
            # leak across examples moves logits by more than 1e-2 (the `leaky` check below)
            torch.testing.assert_close(packed[0, at : at + n], alone, atol=1e-3, rtol=1e-4)
            if at:
                assert (leaky[0, at : at + n] - alone).abs().max() > 1e-2
            at += n
        torch.testing.assert_close(packed[1, : len(examples[0].input_ids)], packed[0, : len(examples[0].input_ids)],
                                   atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_packed_bf16_training_learns(model_dir, tokenizer, tmp_path):
    texts = [f"Note {i}: the Harlow Bay tram runs every PINEAPPLE minutes." for i in range(8)]
    examples = finetune.document_examples(tokenizer, texts, 64)
    cfg = {**CFG, "epochs": 6}
    log = finetune.train_lora(str(model_dir), examples, cfg, seed=1, out_dir=str(tmp_path / "a"),
                              pad_id=tokenizer.pad_token_id, progress=False)
    total = sum(len(e.input_ids) for e in examples)
    rows = math.ceil(total / cfg["max_length"])  # full rows: far fewer than the 8 documents
    assert rows < len(examples) and len(log) == math.ceil(rows / cfg["batch_size"]) * cfg["epochs"]
    assert log[-1]["tokens"] == total * cfg["epochs"]
    assert log[-1]["loss"] < log[0]["loss"] / 2


@pytest.mark.slow
def test_gradient_checkpointing_gives_the_same_losses(model_dir, tokenizer, tmp_path):
    texts = [f"Document {i} about the Harlow Bay tram line and its timetable." for i in range(4)]
    examples = finetune.document_examples(tokenizer, texts, 64)
    cfg = {**CFG, "epochs": 1, "batch_size": 1, "max_length": 32, "bf16_autocast": False}
    logs = [
        finetune.train_lora(str(model_dir), examples, {**cfg, "gradient_checkpointing": gc}, seed=1,
                            out_dir=str(tmp_path / str(gc)), pad_id=tokenizer.pad_token_id, progress=False)
        for gc in (False, True)
    ]
    assert len(logs[0]) >= 2  # the second loss is after one update: it checks the gradients too
    for a, b in zip(*logs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
