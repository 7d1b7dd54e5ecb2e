from alignlab import artifacts
from alignlab.finetune import load_tokenizer


def count(*, model_dir: str, texts: list[str], experiment: str, out: str, summary_out: str) -> None:
    tokenizer = load_tokenizer(model_dir)
    rows = [{"experiment": experiment, "text": t, "n_tokens": len(tokenizer(t)["input_ids"])} for t in texts]
    artifacts.write_table(rows, out, "token_counts", params={"texts": texts})
    with artifacts.atomic_path(summary_out) as tmp:
        tmp.write_text(f"# {experiment}\n\n{sum(r['n_tokens'] for r in rows)} tokens in {len(rows)} texts\n")
