"""The management API's use cases on in-memory stores, with an injected clock: start or schedule a
campaign (nothing half-made stays when a start fails), edit it, re-send to the failed once, and what a
campaign that has not been stored yet looks like. tests/api shows the same through the real API
function on the emulator; here each decision is one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bulkmail import campaign_actions
from bulkmail.errors import (
    CampaignExists,
    CampaignInvalid,
    CampaignNotFound,
    ExecutionExists,
    ExecutionNotFound,
    InvalidTransition,
    NoAudience,
)
from bulkmail.validation import validate_campaign
from tests.fakes import FakeCampaigns, FakeContacts, FakeLedger, settings

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:campaign"


class Clock:
    def __init__(self, now: datetime = NOW) -> None:
        self.moment = now

    def now(self) -> datetime:
        return self.moment


class Lists:
    def __init__(self, names: set[str]) -> None:
        self.known = names

    def exists(self, name: str) -> bool:
        return name in self.known

    def names(self, limit: int) -> tuple[list[str], bool]:
        return sorted(self.known)[:limit], len(self.known) > limit


class Contacts(FakeContacts):
    """FakeContacts with the list registry the audience check reads."""

    def __init__(self, contacts: list[dict[str, Any]]) -> None:
        super().__init__(contacts)
        self.lists = Lists({name for c in contacts for name in c.get("lists", [])})


class Admin:
    """adapters/campaign_admin.CampaignAdmin on the fake campaigns table."""

    def __init__(self, campaigns: FakeCampaigns) -> None:
        self.campaigns = campaigns

    def delete(self, campaign_id: str) -> None:
        self.campaigns.items.pop(campaign_id, None)

    def claim_resend(self, campaign_id: str, resend_id: str) -> str:
        return str(self.campaigns.items[campaign_id].setdefault("resent_as", resend_id))


class Executions:
    """Step Functions: executions by name, each started at most once."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.started: dict[str, Mapping[str, Any]] = {}
        self.described: dict[str, dict[str, Any]] = {}
        self.fail = fail

    def arn(self, name: str) -> str:
        return MACHINE.replace(":stateMachine:", ":execution:") + ":" + name

    def start(self, name: str, payload: Mapping[str, Any]) -> str:
        if self.fail:
            raise self.fail
        if name in self.started:
            raise ExecutionExists(name)
        self.started[name] = payload
        return self.arn(name)

    def start_once(self, name: str, payload: Mapping[str, Any]) -> str:
        self.started.setdefault(name, payload)
        return self.arn(name)

    def describe(self, arn: str) -> dict[str, Any]:
        if arn not in self.described:
            raise ExecutionNotFound(arn)
        return self.described[arn]

    def history(self, arn: str) -> list[dict[str, Any]]:
        return []


class Schedules:
    group = "campaign-schedules"

    def __init__(self, fail: Exception | None = None) -> None:
        self.scheduled: dict[str, tuple[datetime, Mapping[str, Any]]] = {}
        self.fail = fail

    def schedule_start(self, name: str, when: datetime, payload: Mapping[str, Any]) -> str:
        if self.fail:
            raise self.fail
        self.scheduled[name] = (when, payload)
        return name

    def delete(self, group: str, name: str) -> bool:
        return self.scheduled.pop(name, None) is not None


class Api:
    """The stores the API's use cases take, in memory."""

    def __init__(self, contacts: int = 2, executions: Executions | None = None, schedules: Schedules | None = None):
        self.campaigns = FakeCampaigns()
        self.contacts = Contacts([{"email": f"p{i}@example.org", "lists": ["news"]} for i in range(contacts)])
        self.ledger = FakeLedger(self.campaigns)
        self.admin = Admin(self.campaigns)
        self.executions = executions or Executions()
        self.schedules = schedules or Schedules()
        self.clock = Clock()

    def start(self, **fields: Any) -> dict[str, Any]:
        document = {"campaign_id": "c1", "campaign_name": "n", "subject": "s", "body": "b", **fields}
        return campaign_actions.start(
            validate_campaign(document, now=self.clock.now()),
            campaigns=self.campaigns,
            contacts=self.contacts,  # the audience check reads a ContactStore: this one is in memory
            admin=self.admin,
            executions=self.executions,
            schedules=self.schedules,
            settings=settings(),
            clock=self.clock,
        )


def email(**fields: Any) -> dict[str, Any]:
    return {"from_email": "news@example.com", **fields}


# --- start now, or schedule -----------------------------------------------------------------------


def test_a_campaign_is_stored_queued_before_its_execution_starts_with_the_submitted_fields() -> None:
    api = Api()
    answer = api.start(**email())
    arn = api.executions.arn("c1")
    assert answer == {"campaign_id": "c1", "status": "queued", "execution_arn": arn}
    stored = api.campaigns.get("c1")
    assert (stored["status"], stored["execution_arn"], stored["updated_at"]) == (
        "queued",
        arn,
        "2026-12-02T09:00:00.000+00:00",
    )
    assert api.executions.started["c1"]["subject"] == "s" and "status" not in api.executions.started["c1"]


def test_a_known_id_is_refused_and_starts_nothing() -> None:
    api = Api()
    api.start(**email())
    with pytest.raises(CampaignExists, match="c1 already exists"):
        api.start(**email(subject="again"))
    assert api.campaigns.get("c1")["subject"] == "s" and len(api.executions.started) == 1


def test_an_execution_that_ran_before_under_the_same_name_is_a_conflict_and_leaves_nothing_stored() -> None:
    api = Api()
    api.executions.started["c1"] = {}
    with pytest.raises(CampaignExists):
        api.start(**email())
    with pytest.raises(CampaignNotFound):
        api.campaigns.get("c1")


def test_a_failed_start_takes_the_record_back_and_raises() -> None:
    api = Api(executions=Executions(fail=ConnectionError("Step Functions unreachable")))
    with pytest.raises(ConnectionError):
        api.start(**email())
    assert api.campaigns.items == {}


def test_a_campaign_to_nobody_is_refused_before_anything_is_stored() -> None:
    api = Api(contacts=0)
    with pytest.raises(NoAudience) as refused:
        api.start(**email())
    assert refused.value.errors[0]["field"] == "list"
    with pytest.raises(NoAudience, match="there is no list 'nws'"):
        Api().start(**email(list="nws"))
    assert api.campaigns.items == {} and api.executions.started == {}


def test_send_at_stores_the_campaign_scheduled_and_schedules_its_start_at_that_time() -> None:
    api = Api()
    when = NOW + timedelta(hours=2)
    answer = api.start(**email(send_at=when.isoformat()))
    assert answer == {"campaign_id": "c1", "status": "scheduled", "schedule_name": "c1"}
    stored = api.campaigns.get("c1")
    assert (stored["status"], stored["schedule_group"]) == ("scheduled", Schedules.group)
    scheduled_at, payload = api.schedules.scheduled["c1"]
    assert scheduled_at == when and "send_at" not in payload
    assert api.executions.started == {}


def test_a_schedule_that_cannot_be_made_leaves_nothing_stored() -> None:
    api = Api(schedules=Schedules(fail=ConnectionError("Scheduler unreachable")))
    with pytest.raises(ConnectionError):
        api.start(**email(send_at=(NOW + timedelta(hours=2)).isoformat()))
    assert api.campaigns.items == {}


# --- edit -----------------------------------------------------------------------------------------


def test_an_edit_names_each_field_it_cannot_change_and_changes_nothing() -> None:
    api = Api()
    api.start(**email())
    with pytest.raises(CampaignInvalid) as refused:
        campaign_actions.edit("c1", {"list": "x", "subject": "t"}, campaigns=api.campaigns)
    assert [e["field"] for e in refused.value.errors] == ["list"]
    with pytest.raises(CampaignInvalid, match=r"\$: name at least one of"):
        campaign_actions.edit("c1", {}, campaigns=api.campaigns)
    assert api.campaigns.get("c1")["subject"] == "s"


def test_an_edit_is_stamped_by_the_clock_until_the_campaign_ends() -> None:
    api = Api()
    api.start(**email())
    api.clock.moment = NOW + timedelta(minutes=5)
    record = campaign_actions.edit("c1", {"subject": "t"}, campaigns=api.campaigns, clock=api.clock)
    assert (record["subject"], record["updated_at"]) == ("t", "2026-12-02T09:05:00.000+00:00")
    api.campaigns.update_fields("c1", {"status": "completed"})
    with pytest.raises(InvalidTransition, match="a completed campaign cannot be edited"):
        campaign_actions.edit("c1", {"subject": "u"}, campaigns=api.campaigns)


# --- re-send to the failed ------------------------------------------------------------------------


def failed_once(api: Api) -> None:
    api.start(**email())
    api.ledger.rows[("c1", "p0@example.org")] = {"status": "failed", "batch_id": "p0-0"}
    api.campaigns.update_fields("c1", {"status": "completed"})


def test_a_re_send_starts_once_however_often_it_is_asked_for() -> None:
    api = Api()
    failed_once(api)
    resend = {
        "campaigns": api.campaigns,
        "ledger": api.ledger,
        "admin": api.admin,
        "executions": api.executions,
        "settings": settings(),
    }
    first = campaign_actions.resend_failed("c1", **resend)
    again = campaign_actions.resend_failed("c1", **resend)
    assert first["campaign_id"] == again["campaign_id"] and first["resend_of"] == "c1"
    assert (first["status"], again["status"]) == ("queued", "queued")
    assert list(api.executions.started) == ["c1", first["campaign_id"]]
    assert api.campaigns.get(first["campaign_id"])["resend_of"] == "c1"


# --- a campaign not stored yet, and its trace -----------------------------------------------------


def test_a_campaign_not_stored_is_what_its_execution_says() -> None:
    executions = Executions()
    with pytest.raises(CampaignNotFound):
        campaign_actions.starting("c9", executions=executions)
    executions.described[executions.arn("c9")] = {"status": "RUNNING"}
    assert campaign_actions.starting("c9", executions=executions)["status"] == "queued"
    executions.described[executions.arn("c9")] = {"status": "FAILED", "error": "CampaignInvalid", "cause": "why"}
    failed = campaign_actions.starting("c9", executions=executions)
    assert (failed["status"], failed.get("error"), failed.get("cause")) == ("failed", "CampaignInvalid", "why")


def test_a_scheduled_campaign_has_no_trace_yet() -> None:
    api = Api()
    api.start(**email(send_at=(NOW + timedelta(hours=2)).isoformat()))
    with pytest.raises(InvalidTransition, match="a scheduled campaign has no execution yet"):
        campaign_actions.trace(api.campaigns.get("c1"), executions=api.executions)
