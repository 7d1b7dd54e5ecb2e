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
