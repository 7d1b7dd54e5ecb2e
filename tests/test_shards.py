import polars as pl
import pytest

from alignlab import artifacts, shards


def test_parse_reads_snakemake_scatter_items():
    assert shards.parse("2-of-4") == (2, 4)
    for bad in ("0-of-2", "3-of-2", "2of4", "a-of-b"):
        with pytest.raises(ValueError, match=bad):
            shards.parse(bad)


@pytest.mark.parametrize("n_rows,n", [(12, 2), (10, 3), (2, 2), (7, 7), (1, 1)])
def test_chunks_cover_the_table_in_order_once(n_rows, n):
    table = pl.DataFrame({"i": list(range(n_rows))})
    chunks = [shards.chunk(table, f"{i}-of-{n}") for i in range(1, n + 1)]
    assert pl.concat(chunks)["i"].to_list() == list(range(n_rows))
    sizes = [c.height for c in chunks]
    assert max(sizes) - min(sizes) <= 1


def _chats(path, params, n=2, start=0):
    rows = [
        {"example_id": f"e{i}", "query_id": f"q{i}", "tier": "free", "system": "s", "user": "u",
         "assistant": "a", "target": "comply"}
        for i in range(start, start + n)
    ]
    artifacts.write_table(rows, path, "chats", params=params)


def test_gather_concatenates_in_order_and_keeps_metadata(tmp_path):
    _chats(tmp_path / "1.parquet", {"p": 1}, start=0)
    _chats(tmp_path / "2.parquet", {"p": 1}, start=2)
    out = tmp_path / "all.parquet"
    shards.gather(paths=[tmp_path / "1.parquet", tmp_path / "2.parquet"], schema="chats", out=str(out))
    assert artifacts.read_table(out)["query_id"].to_list() == ["q0", "q1", "q2", "q3"]
    assert artifacts.read_metadata(out) == artifacts.read_metadata(tmp_path / "1.parquet")


def test_gather_refuses_shards_made_with_other_parameters(tmp_path):
    _chats(tmp_path / "1.parquet", {"p": 1})
    _chats(tmp_path / "2.parquet", {"p": 2})
    out = tmp_path / "all.parquet"
    with pytest.raises(ValueError, match="other parameters"):
        shards.gather(paths=[tmp_path / "1.parquet", tmp_path / "2.parquet"], schema="chats", out=str(out))
    assert not out.exists()


def test_gather_keeps_one_arms_rows_of_shards_that_hold_every_arm(tmp_path):
    # A sampling shard holds every arm of the experiment; each arm's table takes its own rows.
    import pyarrow as pa

    def sample_row(**values):
        blank = {pa.string(): "", pa.int64(): 0, pa.int32(): 0, pa.bool_(): False, pa.float64(): 0.0}
        return {f.name: values.get(f.name, blank.get(f.type)) for f in artifacts.SCHEMAS["samples"]}

    for i in (1, 2):
        rows = [sample_row(arm=arm, query_id=f"q{i}{arm}") for arm in ("base", "sdf")]
        artifacts.write_table(rows, tmp_path / f"{i}.parquet", "samples", params={"p": 1})
    out = tmp_path / "sdf.parquet"
    shards.gather(paths=[tmp_path / "1.parquet", tmp_path / "2.parquet"], schema="samples", out=str(out), arm="sdf")
    gathered = artifacts.read_table(out, "samples")
    assert gathered["query_id"].to_list() == ["q1sdf", "q2sdf"] and set(gathered["arm"]) == {"sdf"}
