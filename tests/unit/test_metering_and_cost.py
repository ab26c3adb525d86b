"""The benchmark's arithmetic: DynamoDB capacity units, and cost per 1M emails from usage."""

import pytest

from bulkmail_local.bench.cost import Deployment, cost_per_million, load_prices, worker_seconds_per_email
from bulkmail_local.runtime.metering import item_size, read_units, write_units


def test_item_size_follows_dynamodb_rules():
    assert item_size({"email": {"S": "a@b.co"}}) == len("email") + 6
    assert item_size({"n": {"N": "12345"}}) == 1 + 4  # about a byte per two digits, plus one
    assert item_size({"ok": {"BOOL": True}, "none": {"NULL": True}}) == 2 + 1 + 4 + 1
    nested = {"m": {"M": {"k": {"S": "vv"}}}}
    assert item_size(nested) == 1 + 3 + 1 + 1 + 2


@pytest.mark.parametrize(
    "size,consistent,units", [(10, True, 1), (10, False, 0.5), (4096, True, 1), (4097, True, 2), (9000, False, 1.5)]
)
def test_read_units_are_per_4kb_and_half_when_eventually_consistent(size, consistent, units):
    assert read_units(size, consistent) == units


@pytest.mark.parametrize("size,units", [(0, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_write_units_are_per_kb(size, units):
    assert write_units(size) == units


DEPLOYMENT = Deployment(
    send_rate=14,
    poll_seconds=60,
    page_size=1000,
    recipients_per_message=50,
    worker_concurrency=2,
    worker_memory_mb=128,
    workflow_memory_mb=256,
)
USAGE = {
    "ses_requests": 1.0,
    "sqs_requests": 0.01,
    "secretsmanager_requests": 0.0,
    "dynamodb_read_units": 0.5,
    "dynamodb_write_units": 2.1,
    "worker_invocations": 0.005,
    "transitions_per_page": 2.0,
    "transitions_per_poll": 3.0,
}


def test_cost_lines_follow_the_price_list():
    prices = load_prices()
    lines = cost_per_million(USAGE, DEPLOYMENT, prices)
    assert lines["ses"] == pytest.approx(100 * prices["ses_per_1000_emails"] / 0.10)
    assert lines["dynamodb_writes"] == pytest.approx(2.1 * prices["dynamodb_per_million_write_units"], abs=1e-4)
    assert lines["dynamodb_reads"] == pytest.approx(0.5 * prices["dynamodb_per_million_read_units"], abs=1e-4)
    # 1,000 pages of 2 transitions and 1M / 14 / 60 polls of 3
    transitions = 1000 * 2 + 1_000_000 / 14 / 60 * 3
    assert lines["step_functions"] == pytest.approx(
        transitions / 1000 * prices["step_functions_per_1000_transitions"], abs=1e-4
    )
    assert lines["non_ses_total"] == pytest.approx(
        sum(v for k, v in lines.items() if k not in ("ses", "non_ses_total", "non_ses_share_of_ses"))
    )


def test_a_pacing_worker_is_billed_for_its_wait():
    a = load_prices()["assumptions"]
    assert worker_seconds_per_email(DEPLOYMENT, a) >= 2 / 14  # two workers sharing 14 emails/s
    fast = Deployment(**{**DEPLOYMENT.__dict__, "send_rate": 1000})
    assert worker_seconds_per_email(fast, a) >= a["ses_send_seconds"]  # then the send itself bounds it
