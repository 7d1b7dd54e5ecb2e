"""The comparison the reproducibility and SLURM tests rely on (workflow.assert_same_results)
fails where two runs differ, also when the second ran only part of the DAG."""

from __future__ import annotations

import pytest

from alignlab import artifacts
from workflow import assert_same_results


def write_run(root, rows, weights=b"w", extra=False):
    artifacts.write_table(rows, root / "exp/queries.parquet", "queries")
    (root / "exp/adapters/a").mkdir(parents=True)
    (root / "exp/adapters/a/adapter_model.safetensors").write_bytes(weights)
    if extra:
        artifacts.write_table(rows, root / "exp/more.parquet", "queries")
    return root


ROWS = [{"query_id": "q1", "split": "eval", "prompt": "p", "category": "c", "source": "s", "source_row": 0}]


def test_equal_runs_and_a_subset_pass(tmp_path):
    full = write_run(tmp_path / "a", ROWS, extra=True)
    assert assert_same_results(full, write_run(tmp_path / "b", ROWS, extra=True)) == 2
    assert assert_same_results(full, write_run(tmp_path / "c", ROWS), subset=True) == 1
    with pytest.raises(AssertionError, match="different tables"):
        assert_same_results(full, tmp_path / "c")


@pytest.mark.parametrize("subset", [False, True])
def test_different_content_or_weights_fail(tmp_path, subset):
    full = write_run(tmp_path / "a", ROWS, extra=subset)
    other = write_run(tmp_path / "b", [{**ROWS[0], "prompt": "q"}])
    with pytest.raises(AssertionError, match="content differs"):
        assert_same_results(full, other, subset=subset)
    with pytest.raises(AssertionError, match="weights differ"):
        assert_same_results(full, write_run(tmp_path / "c", ROWS, weights=b"x"), subset=subset)


def test_a_subset_with_a_table_the_first_run_lacks_fails(tmp_path):
    with pytest.raises(AssertionError, match="did not write"):
        assert_same_results(write_run(tmp_path / "a", ROWS), write_run(tmp_path / "b", ROWS, extra=True), subset=True)
