import json

import polars as pl
import pytest

from alignlab import queries


def test_packaged_strongreject_loads_every_row():
    df = queries.load_queries("strongreject")
    assert df.height == 313 and df["category"].n_unique() == 6
    assert df["prompt"].str.len_chars().min() > 0


def test_split_is_stratified_disjoint_and_seeded():
    df = queries.build({"source": "strongreject", "n_train": 60, "n_eval": 30}, seed=3)
    evalq, train = df.filter(split="eval"), df.filter(split="train")
    assert evalq.height == 30 and train.height == 60
    assert not set(evalq["prompt"]) & set(train["prompt"])
    assert set(evalq.group_by("category").len()["len"]) == {5}  # 6 categories x 5
    assert df.equals(queries.build({"source": "strongreject", "n_train": 60, "n_eval": 30}, seed=3))
    other = queries.build({"source": "strongreject", "n_train": 60, "n_eval": 30}, seed=4)
    assert set(other.filter(split="eval")["query_id"]) != set(evalq["query_id"])


def test_eval_set_does_not_move_when_train_grows():
    a = queries.build({"source": "strongreject", "n_train": 10, "n_eval": 20}, seed=1)
    b = queries.build({"source": "strongreject", "n_train": 80, "n_eval": 20}, seed=1)
    assert a.filter(split="eval")["query_id"].to_list() == b.filter(split="eval")["query_id"].to_list()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_file_source_with_column_mapping(tmp_path, suffix):
    data = pl.DataFrame({"request": [f"do thing {i}" for i in range(12)], "kind": ["a", "b"] * 6})
    path = tmp_path / f"q{suffix}"
    {".csv": data.write_csv, ".jsonl": data.write_ndjson, ".parquet": data.write_parquet}[suffix](path)
    df = queries.build(
        {"source": "file", "path": str(path), "columns": {"prompt": "request", "category": "kind"},
         "n_train": 4, "n_eval": 6}, seed=0,
    )
    assert df.height == 10 and set(df["category"]) == {"a", "b"}
    assert df.filter(split="eval").group_by("category").len()["len"].to_list() == [3, 3]


def test_empty_prompt_names_the_file_and_row(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": p}) for p in ["fine", "  ", "also fine"]))
    with pytest.raises(queries.QueryError, match=r"q\.jsonl, row 2: empty prompt in column 'prompt'"):
        queries.load_queries("file", str(path))


def test_missing_column_names_it(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text\nhello\n")
    with pytest.raises(queries.QueryError, match="no column 'prompt'"):
        queries.load_queries("file", str(path))


def test_too_many_requested():
    with pytest.raises(queries.QueryError, match="has 313"):
        queries.build({"source": "strongreject", "n_train": 300, "n_eval": 30}, seed=0)
