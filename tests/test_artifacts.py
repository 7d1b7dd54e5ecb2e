import pyarrow.parquet as pq
import pytest

from alignlab import artifacts

ROW = {"step": 1, "epoch": 0, "loss": 2.5, "learning_rate": 1e-4, "tokens": 100, "seconds": 1.0,
       "tokens_per_second": 100.0}


def test_write_declares_schema_and_metadata(tmp_path):
    path = tmp_path / "log.parquet"
    artifacts.write_table([ROW], path, "train_log", params={"lr": 1}, templates={"t": "abc"})
    artifacts.check_schema(path, "train_log")
    meta = artifacts.read_metadata(path)
    assert meta["params_sha256"] == artifacts.params_hash({"lr": 1})
    assert '"t": "abc"' in meta["template_sha256"]
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_params_hash_ignores_key_order():
    assert artifacts.params_hash({"a": 1, "b": 2}) == artifacts.params_hash({"b": 2, "a": 1})
    assert artifacts.params_hash({"a": 1}) != artifacts.params_hash({"a": 2})


def test_wrong_columns_fail_naming_the_table_and_row(tmp_path):
    with pytest.raises(ValueError, match=r"table 'train_log', row 1: .*missing \['loss'\]"):
        artifacts.write_table([ROW, {k: v for k, v in ROW.items() if k != "loss"}], tmp_path / "x.parquet", "train_log")
    assert not list(tmp_path.iterdir())


def test_failed_write_leaves_nothing_that_looks_finished(tmp_path):
    path = tmp_path / "log.parquet"
    with pytest.raises(Exception):
        artifacts.write_table([{**ROW, "step": "not a number"}], path, "train_log")
    assert not list(tmp_path.iterdir())
    with pytest.raises(RuntimeError):
        with artifacts.atomic_dir(tmp_path / "adapter") as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed")
    assert not list(tmp_path.iterdir())


def test_check_schema_detects_drift(tmp_path):
    path = tmp_path / "log.parquet"
    artifacts.write_table([ROW], path, "train_log")
    with pytest.raises(ValueError, match="differs from declared 'gaps'"):
        artifacts.check_schema(path, "gaps")


def test_a_killed_writers_temporaries_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "adapter"
    stale_dir = tmp_path / ".adapter.abc123.tmp"
    stale_dir.mkdir()
    (stale_dir / "half.bin").write_bytes(b"x")
    other = tmp_path / ".adapter2.abc.tmp"  # another target's temporary: left alone
    other.mkdir()
    with artifacts.atomic_dir(target) as tmp:
        (tmp / "done.bin").write_bytes(b"y")
    assert (target / "done.bin").is_file() and not stale_dir.exists() and other.exists()
    stale_file = tmp_path / ".t.parquet.zzz.tmp"
    stale_file.write_bytes(b"partial")
    with artifacts.atomic_path(tmp_path / "t.parquet") as tmp:
        tmp.write_bytes(b"ok")
    assert not stale_file.exists()
