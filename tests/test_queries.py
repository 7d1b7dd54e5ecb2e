import polars as pl
import pytest

from alignlab import artifacts
from alignlab.kinds.alignment_faking import queries


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


def load_error(path, columns=None) -> str:
    with pytest.raises(queries.QueryError) as err:
        queries.load_queries("file", str(path), columns)
    return str(err.value)


def test_empty_prompt_in_csv_names_file_line_and_column(tmp_path):
    # Line numbers are as an editor counts them: a quoted field may span two lines.
    path = tmp_path / "q.csv"
    path.write_text('request,kind\nfine,a\n"two\nlines",b\n   ,c\n,d\nfine again,e\n')
    assert load_error(path, {"prompt": "request"}) == (
        f"{path}, line 5 (data row 3, header not counted): empty prompt in column 'request' "
        "(whitespace only); 1 more empty: line 6"
    )


def test_empty_prompt_in_jsonl_names_file_line_and_column(tmp_path):
    # Blank lines are skipped; a null value and a missing key both count as empty.
    path = tmp_path / "q.jsonl"
    path.write_text('{"prompt": "fine"}\n\n{"prompt": null}\n{"other": 1}\n{"prompt": "ok"}\n')
    assert load_error(path) == (
        f"{path}, line 3 (record 2): empty prompt in column 'prompt' (null); 1 more empty: line 4"
    )


def test_empty_prompt_in_parquet_names_file_row_and_column(tmp_path):
    path = tmp_path / "q.parquet"
    pl.DataFrame({"request": ["fine", "", "also fine"]}).write_parquet(path)
    assert load_error(path, {"prompt": "request"}) == (
        f"{path}, row 2 (counted from 1): empty prompt in column 'request' (empty string)"
    )


def test_many_empty_prompts_are_listed_up_to_ten(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("prompt\n" + "\n".join(["ok"] + [" "] * 13) + "\n")
    text = load_error(path)
    assert text.startswith(f"{path}, line 3 (data row 2, header not counted)")
    assert text.endswith("12 more empty: " + ", ".join(f"line {i}" for i in range(4, 14)) + ", ...")


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("q.jsonl", '{"prompt": "a"}\n{"prompt": oops}\n', r"q\.jsonl, line 2: not valid JSON"),
        ("q.csv", "prompt\n", r"q\.csv: no data rows"),
        ("q.csv", "", r"q\.csv: cannot be read as CSV"),
        ("q.parquet", "not parquet", r"q\.parquet: cannot be read as PARQUET"),
    ],
)
def test_unreadable_or_empty_file_is_named(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(queries.QueryError, match=expected):
        queries.load_queries("file", str(path))


def test_a_queries_table_with_an_empty_prompt_or_repeated_id_fails_on_read(tmp_path):
    """Steps that read the queries table (sample, positive-control data) check it cheaply."""
    table = queries.build({"source": "strongreject", "n_train": 2, "n_eval": 3}, seed=0)
    good = tmp_path / "queries.parquet"
    artifacts.write_table(table, good, "queries")
    assert artifacts.read_table(good, "queries").equals(table)

    qid = table["query_id"][1]
    blank = tmp_path / "blank.parquet"
    artifacts.write_table(
        table.with_columns(prompt=pl.when(pl.col("query_id") == qid).then(pl.lit("  ")).otherwise("prompt")),
        blank, "queries",
    )
    with pytest.raises(ValueError, match=rf"blank\.parquet, query_id '{qid}': empty prompt \(whitespace only\)"):
        artifacts.read_table(blank, "queries")

    repeated = tmp_path / "repeated.parquet"
    artifacts.write_table(table.with_columns(query_id=pl.lit("q0001")), repeated, "queries")
    with pytest.raises(ValueError, match=r"repeated\.parquet: query_id 'q0001' is on 5 rows"):
        artifacts.read_table(repeated, "queries")

    other = tmp_path / "other.parquet"
    table.drop("source_row").write_parquet(other)
    with pytest.raises(ValueError, match=r"other\.parquet: schema differs from declared 'queries'"):
        artifacts.read_table(other, "queries")


def test_missing_column_names_it(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("text\nhello\n")
    with pytest.raises(queries.QueryError, match="no column 'prompt'"):
        queries.load_queries("file", str(path))


def test_too_many_requested():
    with pytest.raises(queries.QueryError, match="has 313"):
        queries.build({"source": "strongreject", "n_train": 300, "n_eval": 30}, seed=0)
