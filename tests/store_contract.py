"""What the core relies on from its stores, checked on the fakes (tests/unit) and on the DynamoDB
adapters (tests/integration), so the fakes that drive the fast tests behave as the real stores do."""

from __future__ import annotations

from typing import Any

from bulkmail.models import CampaignStatus, Claim, DeliveryStatus, Lease, Outcome

NOW = "2026-12-01T09:00:00.000Z"


def _campaign(campaign_id: str, status: CampaignStatus = CampaignStatus.QUEUED) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "campaign_name": "n", "status": status.value, "total_contacts": 7}


def a_campaign_is_created_once(campaigns: Any, ledger: Any) -> None:
    assert campaigns.create(_campaign("once"))
    assert not campaigns.create(_campaign("once"))
    stored = campaigns.get("once")
    assert stored["total_contacts"] == 7 and stored["queued_count"] == stored["processed_count"] == 0
    assert (stored["fanout_page"], stored["fanout_done"], stored["fanout_cursor"]) == (0, False, None)


def a_transition_happens_only_from_the_given_statuses(campaigns: Any, ledger: Any) -> None:
    campaigns.create(_campaign("moves"))
    assert not campaigns.transition("moves", (CampaignStatus.PROCESSING,), CampaignStatus.PAUSED, NOW)
    assert campaigns.get("moves")["status"] == "queued"
    assert campaigns.transition(
        "moves", (CampaignStatus.QUEUED, CampaignStatus.PROCESSING), CampaignStatus.PAUSED, NOW, {"pause_reason": "r"}
    )
    stored = campaigns.get("moves")
    assert (stored["status"], stored["pause_reason"], stored["updated_at"]) == ("paused", "r", NOW)
    assert not campaigns.transition("absent", (CampaignStatus.QUEUED,), CampaignStatus.PAUSED, NOW)


def a_fanout_page_is_counted_once_and_the_last_sets_the_total(campaigns: Any, ledger: Any) -> None:
    campaigns.create(_campaign("pages"))
    assert campaigns.record_fanout_page("pages", 0, {"email": "x@example.org"}, 50, NOW)
    assert not campaigns.record_fanout_page("pages", 0, {"email": "x@example.org"}, 50, NOW)  # a retried step
    assert campaigns.record_fanout_page("pages", 1, None, 20, NOW)
    stored = campaigns.get("pages")
    assert (stored["queued_count"], stored["total_contacts"], stored["fanout_done"]) == (70, 70, True)
    assert (stored["fanout_page"], stored["fanout_cursor"]) == (2, None)


def a_batch_is_claimed_by_one_worker_at_a_time(campaigns: Any, ledger: Any) -> None:
    first = ledger.claim("claims", "b1", "t1", 1000.0, 60)
    assert (first.claim, first.attempts) == (Claim.CLAIMED, 1)
    assert ledger.claim("claims", "b1", "t2", 1030.0, 60).claim is Claim.BUSY
    again = ledger.claim("claims", "b1", "t3", 1061.0, 60)  # the lease ran out: the claimer died
    assert (again.claim, again.attempts) == (Claim.RECLAIMED, 2)


def _lease(campaign_id: str, token: str, batch_id: str = "b1") -> Lease:
    return Lease(campaign_id, batch_id, token, 60)


def a_paused_campaigns_batch_is_parked_and_taken_back_once(campaigns: Any, ledger: Any) -> None:
    campaigns.create(_campaign("parks", CampaignStatus.PAUSED))
    ledger.claim("parks", "b1", "t1", 1000.0, 60)
    assert not ledger.park(_lease("parks", "wrong-token"), ["a@example.org"], NOW)
    assert ledger.park(_lease("parks", "t1"), ["a@example.org", "b@example.org"], NOW)
    assert ledger.claim("parks", "b1", "t2", 1001.0, 60).claim is Claim.PARKED
    assert ledger.unpark_all("parks", NOW) == [("b1", ["a@example.org", "b@example.org"])]
    assert ledger.unpark_all("parks", NOW) == []
    campaigns.create(_campaign("running"))
    ledger.claim("running", "b1", "t1", 1000.0, 60)
    assert not ledger.park(_lease("running", "t1"), ["a@example.org"], NOW)


def outcomes_and_counters_are_recorded_together_once_per_recipient(campaigns: Any, ledger: Any) -> None:
    campaigns.create(_campaign("records"))
    ledger.claim("records", "b1", "t1", 1000.0, 60)
    first = _lease("records", "t1")
    noted = Outcome("a@example.org", DeliveryStatus.SENT, message_id="m-a")
    assert ledger.note_sent(first, noted, NOW)
    assert not ledger.note_sent(first, noted, NOW)  # one row per recipient
    assert ledger.recorded("records", ["a@example.org", "x@example.org"]) == {
        "a@example.org": {"email": "a@example.org", "noted_by": "t1", "batch_id": "b1", "message_id": "m-a"}
    }
    outcomes = [
        Outcome("a@example.org", DeliveryStatus.SENT, message_id="m-a", noted=True, noted_by="t1"),
        Outcome("b@example.org", DeliveryStatus.FAILED, reason="rejected"),
        Outcome("c@example.org", DeliveryStatus.SKIPPED, reason="unsubscribed"),
    ]
    assert ledger.record(first, outcomes, batch_status="done", now_iso=NOW) == outcomes
    stored = campaigns.get("records")
    counts = [stored[c] for c in ("sent_count", "failed_count", "skipped_count", "processed_count")]
    assert counts == [1, 1, 1, 3]
    # The noted row is not written again: it is counted because its token is now among the batch's.
    assert ledger.recorded("records", ["a@example.org"]) == {
        "a@example.org": {"email": "a@example.org", "noted_by": "t1", "batch_id": "b1", "message_id": "m-a"}
    }
    assert ledger.count_failed("records") == 1
    assert ledger.claim("records", "b1", "t2", 1001.0, 60).claim is Claim.DONE
    ledger.claim("records", "b2", "t3", 1000.0, 60)
    again = [Outcome("b@example.org", DeliveryStatus.SENT), Outcome("d@example.org", DeliveryStatus.SENT)]
    assert ledger.record(_lease("records", "t3", "b2"), again, batch_status="done", now_iso=NOW) == again[1:]
    assert campaigns.get("records")["processed_count"] == 4


CHECKS = [
    a_campaign_is_created_once,
    a_transition_happens_only_from_the_given_statuses,
    a_fanout_page_is_counted_once_and_the_last_sets_the_total,
    a_batch_is_claimed_by_one_worker_at_a_time,
    a_paused_campaigns_batch_is_parked_and_taken_back_once,
    outcomes_and_counters_are_recorded_together_once_per_recipient,
]
