from alignlab import timings


def test_records_print_as_a_table_and_read_back_from_a_log():
    timings.reset()
    timings.record("engine start-up", 20.0)
    timings.record("generate (all arms)", 10.0, items=40, prompt_tokens=8000, output_tokens=1280)
    recs = timings.records()
    table = timings.table(recs)
    assert "generate (all arms)" in table and "128.0" in table and "4.0" in table  # tok/s, items/s
    log = "some engine output\n" + table + "\n" + timings.json_lines(recs) + "\nmore output\n"
    assert timings.parse_log(log) == recs
    timings.reset()
    assert timings.records() == []


def test_timer_records_a_finished_block_only():
    timings.reset()
    with timings.timer("merge sdf"):
        pass
    try:
        with timings.timer("swap in sdf"):
            raise RuntimeError("failed")
    except RuntimeError:
        pass
    assert [r.stage for r in timings.records()] == ["merge sdf"]
    timings.reset()


def test_every_stage_the_steps_record_has_a_category():
    assert timings.category("engine start-up") == "start-up"
    assert timings.category("load model (weights only)") == "start-up"
    assert timings.category("merge sdf") == timings.category("swap in sdf") == "start-up"
    assert timings.category("generate (adapters)") == timings.category("forward (cosine, both models)") == "generation"
    assert timings.category("train") == timings.category("SAE training") == timings.category("edit (l1)") == "training"
    assert timings.category(timings.JOB) == "other"
    # A stage no category claims is "other", so a new stage name cannot land in one by accident.
    assert timings.category("judge by rules") == "other"


def test_timesplit_sums_a_runs_logs_per_rule(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import timesplit

    def log(path, rule, records):
        timings.reset()
        for stage, seconds in records:
            timings.record(stage, seconds)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"alignlab: step '{rule}' {{}} on host\n{timings.json_lines(timings.records())}\n")
        timings.reset()

    log(tmp_path / "af/sample_1-of-2.log", "sample", [("engine start-up", 30), ("generate (base weights)", 20),
                                                      ("merge sdf", 5), (timings.JOB, 70)])
    log(tmp_path / "af/sample_2-of-2.log", "sample", [("engine start-up", 10), (timings.JOB, 15)])
    log(tmp_path / "af/finetune_sdf.log", "finetune", [("train", 100), (timings.JOB, 110)])
    (tmp_path / "af/gather.log").write_text("no timing lines: not counted\n")
    rules = timesplit.per_rule(tmp_path)
    assert list(rules) == ["finetune", "sample"]  # by wall time
    s = rules["sample"]
    assert (s["jobs"], s["wall"], s["start-up"], s["generation"], s["other"]) == (2, 85, 45, 20, 20)
    assert (s["engine start-ups"], s["merges"]) == (2, 1)
    assert rules["finetune"]["training"] == 100 and rules["finetune"]["other"] == 10
    assert timesplit.rows(rules)[-1][:3] == ["all", "3", "195.0"]
