"""Pure pieces behind the API and the CLI: CSV rows and lines, schedule times, trace steps, SigV4."""
from datetime import datetime, timedelta, timezone

from bulkmail.api import parse_csv
from bulkmail_local.client import ApiClient
from bulkmail_local.runtime.scheduler import due_time
from bulkmail_local.trace import steps


def test_csv_rows_keep_their_starting_line_across_quoted_newlines():
    rows, lines, problems = parse_csv('\ufeffemail,company\na@example.org,"Two\nLines"\nb@example.org,Acme,extra\n')
    assert rows == [{"email": "a@example.org", "company": "Two\nLines"}, {"email": "b@example.org", "company": "Acme"}]
    assert lines == [2, 4]
    assert problems == {1: "$: the row has more cells than the header's 2"}


def test_due_time_reads_at_expressions_in_their_time_zone():
    assert due_time({"ScheduleExpression": "at(2026-12-01T09:00:00)", "ScheduleExpressionTimezone": "Europe/Paris"}) \
        == datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)
    assert due_time({"ScheduleExpression": "rate(5 minutes)"}) is None


def test_trace_steps_pair_entries_with_exits():
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
    events = [
        {"timestamp": t0, "type": "ExecutionStarted"},
        {"timestamp": t0, "stateEnteredEventDetails": {"name": "ValidateCampaign"}},
        {"timestamp": t0 + timedelta(seconds=0.5), "stateExitedEventDetails": {"name": "ValidateCampaign"}},
        {"timestamp": t0 + timedelta(seconds=0.5), "stateEnteredEventDetails": {"name": "WaitForCompletion"}},
    ]
    got = steps(events)
    assert [(s.state, s.started, s.seconds) for s in got] == [("ValidateCampaign", 0.0, 0.5), ("WaitForCompletion", 0.5, None)]


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
