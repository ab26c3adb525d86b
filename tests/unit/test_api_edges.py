"""Pure pieces behind the API and the CLI: CSV rows and lines, schedule times, trace steps, SigV4."""

import json
from datetime import UTC, datetime, timedelta

from bulkmail.contact_import import parse_contacts_csv as parse_csv
from bulkmail.trace import path, progress_samples, steps
from bulkmail_local.client import ApiClient
from bulkmail_local.runtime.scheduler import due_time


def test_csv_rows_keep_their_starting_line_across_quoted_newlines():
    rows, lines, problems = parse_csv('\ufeffemail,company\na@example.org,"Two\nLines"\nb@example.org,Acme,extra\n')
    assert rows == [{"email": "a@example.org", "company": "Two\nLines"}, {"email": "b@example.org", "company": "Acme"}]
    assert lines == [2, 4]
    assert problems == {1: "$: the row has more cells than the header's 2"}


def test_due_time_reads_at_expressions_in_their_time_zone():
    assert due_time(
        {"ScheduleExpression": "at(2026-12-01T09:00:00)", "ScheduleExpressionTimezone": "Europe/Paris"}
    ) == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert due_time({"ScheduleExpression": "rate(5 minutes)"}) is None


def test_trace_steps_pair_entries_with_exits():
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    events = [
        {"timestamp": t0, "type": "ExecutionStarted"},
        {"timestamp": t0, "stateEnteredEventDetails": {"name": "ValidateCampaign"}},
        {"timestamp": t0 + timedelta(seconds=0.5), "stateExitedEventDetails": {"name": "ValidateCampaign"}},
        {"timestamp": t0 + timedelta(seconds=0.5), "stateEnteredEventDetails": {"name": "WaitForProgress"}},
    ]
    got = steps(events)
    assert [(s.state, s.started, s.seconds) for s in got] == [
        ("ValidateCampaign", 0.0, 0.5),
        ("WaitForProgress", 0.5, None),
    ]


def test_trace_path_counts_laps_and_progress_comes_from_the_workflow_steps():
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    events = [{"timestamp": t0, "type": "ExecutionStarted"}]
    for lap, processed in enumerate((4, 10)):
        counts = {"processed_count": processed, "total_contacts": 10, "sent_count": processed - 1, "skipped_count": 1}
        events += [
            {"timestamp": at(2 * lap), "stateEnteredEventDetails": {"name": "AdvanceCampaign"}},
            {
                "timestamp": at(2 * lap + 1),
                "stateExitedEventDetails": {
                    "name": "AdvanceCampaign",
                    "output": json.dumps({"advance": {"next": "wait", "steps": lap + 1, "counts": counts}}),
                },
            },
        ]
    events.append({"timestamp": at(4), "stateEnteredEventDetails": {"name": "MarkCompleted"}})
    assert path(steps(events)) == [
        {"state": "AdvanceCampaign", "entered": 2, "first_started": 0.0, "seconds": 2.0, "running": False},
        {"state": "MarkCompleted", "entered": 1, "first_started": 4.0, "seconds": 0.0, "running": True},
    ]
    assert progress_samples(events) == [
        {"at": "2026-11-27T12:00:01.000+00:00", "processed": 4, "total": 10, "sent": 3, "failed": 0, "skipped": 1},
        {"at": "2026-11-27T12:00:03.000+00:00", "processed": 10, "total": 10, "sent": 9, "failed": 0, "skipped": 1},
    ]


def test_client_signs_with_sigv4_for_a_deployed_stack_only(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    deployed = ApiClient("https://abc123.execute-api.eu-west-1.amazonaws.com/v1")
    headers = deployed._signed_headers("GET", deployed.base_url + "/campaigns", None, {})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in headers["Authorization"]
    local = ApiClient("http://127.0.0.1:8000")
    assert local._signed_headers("GET", local.base_url + "/campaigns", None, {}) == {}
