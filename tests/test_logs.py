"""Log formats: JSON for Cloud Logging when deployed, one readable line per request locally."""

from __future__ import annotations

import logging

from shared import logs


def test_text_mode_writes_one_line_per_request_with_its_run_id(function_client, configure, caplog):
    configure(LOG_FORMAT="text")
    with caplog.at_level(logging.INFO, logger="mission_control.request"):
        status = function_client("jobs").get("/api/lead-runs/run-42/jobs").status_code
    lines = [r.getMessage() for r in caplog.records if r.name == "mission_control.request"]
    assert len(lines) == 1
    method, path, code, ms, run = lines[0].split(" ")
    assert (method, path, code, run) == ("GET", "/api/lead-runs/run-42/jobs", str(status), "run=run-42")
    assert ms.endswith("ms") and float(ms[:-2]) >= 0


def test_json_mode_leaves_the_request_line_to_cloud_run(function_client, configure, caplog):
    configure(LOG_FORMAT="json")
    with caplog.at_level(logging.INFO, logger="mission_control.request"):
        function_client("templates").get("/api/templates")
    assert [r for r in caplog.records if r.name == "mission_control.request"] == []


def test_the_text_formatter_puts_fields_after_the_message():
    record = logging.LogRecord("mission_control.worker", logging.WARNING, __file__, 1, "lease lost", None, None)
    record.json_fields = {"runId": "r1", "batch": 3, "none": None}
    line = logs.TextFormatter().format(record)
    assert line.endswith("WARNING worker: lease lost  runId=r1 batch=3")
