"""Least privilege, proven: the demo-sized pipeline and every API, control, feedback and unsubscribe
path run on one runtime that enforces each role (runtime/iam.py); then every request must have been
allowed and every action each role grants, on each resource it names, must have been used by something.

The table of every (principal, action, resource) checked is printed and written next to the outbox
(docs/iam.md is its reading, with why each action is there).
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bulkmail.adapters.wiring import new_container
from bulkmail_local.runtime import EmbeddedRuntime
from bulkmail_local.runtime.apigw import ApiGateway
from bulkmail_local.runtime.stack import PROJECT_ROOT
from tests.conftest import Harness
from tests.integration.test_feedback import BOUNCE, COMPLAINT, ses_event
from tests.integration.test_unsubscribe import api_event
from tests.scripted_faults import ScriptedFaults
from tests.waiting import eventually

EVENTS = PROJECT_ROOT / "events"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Granted, and used only where this test cannot reach: (role, action) -> why.
UNREACHABLE = {
    # Attached by SAM to every function: used by the Lambda service and the X-Ray SDK, not by our code.
    **{
        ("*", action): "SAM's managed policy: the Lambda service writes the function's logs with it"
        for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents")
    },
    **{
        ("*", action): "SAM's managed policy for Tracing: Active: the X-Ray SDK sends segments (tracing is off locally)"
        for action in (
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        )
    },
    (
        "ApiFunctionRole",
        "dynamodb:DeleteItem@CampaignsTable",
    ): "a scheduled campaign whose CreateSchedule failed is removed again (no fault reaches Scheduler locally)",
    (
        "ApiFunctionRole",
        "dynamodb:GetItem@IdempotencyTable",
    ): "Powertools reads an idempotency record only when DynamoDB did not return it with the failed condition",
    (
        "FeedbackFunctionRole",
        "sqs:SendMessage@FeedbackDeadLetterQueue",
    ): "Lambda sends an async invocation that failed its retries to the on-failure destination with the "
    "function's role; async invocation is not emulated (EventBridge's delivery is called directly)",
}


def finished(api, campaign_id):
    return eventually(
        lambda: (
            api.request("GET", f"/campaigns/{campaign_id}").json().get("status") in ("completed", "cancelled", "failed")
            and api.request("GET", f"/campaigns/{campaign_id}").json()
        )
    )


def exercise(rt: EmbeddedRuntime, outbox: Path) -> None:
    """Every path of the system once: the checks here only keep the scenario honest; IAM is judged after."""
    h = Harness(rt, outbox)
    api = ApiGateway(next(f for f in rt.functions.values() if f.logical_id == "ApiFunction"))
    sm = rt.client("secretsmanager")
    sm.create_secret(
        Name="bulkmail/ses-keys",
        SecretString=json.dumps({"aws_access_key_id": "AKIDOTHERACCOUNT", "aws_secret_access_key": "x"}),
    )
    campaign = json.loads((EVENTS / "campaign.json").read_text())
    contacts = json.loads((EVENTS / "contacts.json").read_text())["contacts"]

    # Contacts: JSON and CSV import, read, delete.
    assert api.request("POST", "/contacts", json_body={"contacts": contacts}).status == 200
    csv = "email,first_name\nada@example.org,Ada\nalan@example.org,Alan\n"
    assert api.request("POST", "/contacts/import", body=csv, headers={"Content-Type": "text/csv"}).status == 200
    assert api.request("GET", "/contacts/ada@example.org").status == 200
    assert api.request("DELETE", "/contacts/alan@example.org").status in (200, 204)
    unknown = api.request("POST", "/campaigns", json_body={**campaign, "list": "nobody-here"})
    assert 400 <= unknown.status < 500, unknown.body  # names the lists there are

    # The demo campaign, idempotently, with a scripted throttle (the worker's backoff), a rejection
    # (for resend-failed) and SES pausing the account for one recipient (CampaignPaused).
    first, second = contacts[0]["email"], contacts[1]["email"]
    rt.faults = ScriptedFaults(ses={first: ["TooManyRequestsException"], second: ["MessageRejected"]})
    key = {"Idempotency-Key": "demo-1"}
    r = api.request("POST", "/campaigns", json_body=campaign, headers=key)
    assert r.status == 202, r.body
    assert api.request("POST", "/campaigns", json_body=campaign, headers=key).json() == r.json()
    demo = r.json()["campaign_id"]
    record = finished(api, demo)
    assert record["status"] == "completed" and record["sent_count"] > 150, record
    for route in ("", "/deliveries", "/trace"):
        assert api.request("GET", f"/campaigns/{demo}{route}").status == 200, route
    assert api.request("GET", "/campaigns").status == 200
    # A request that fails inside the idempotent call: Powertools deletes its record.
    taken = api.request(
        "POST", "/campaigns", json_body={**campaign, "campaign_id": demo}, headers={"Idempotency-Key": "2"}
    )
    assert taken.status == 409, taken.body

    # A re-send of the failed recipient.
    r = api.request("POST", f"/campaigns/{demo}/resend-failed")
    assert r.status == 202, r.body
    assert finished(api, r.json()["campaign_id"])["sent_count"] == 1

    # Preview and test sends (with the stack's SES, and with another account's keys).
    assert (
        api.request(
            "POST",
            "/campaigns/preview",
            json_body={**campaign, "contact": {"email": "a@example.org", "first_name": "A"}},
        ).status
        == 200
    )
    assert api.request("POST", "/campaigns/test", json_body={**campaign, "to": ["me@example.org"]}).status == 200
    assert (
        api.request(
            "POST",
            "/campaigns/test",
            json_body={**campaign, "to": ["me@example.org"], "aws_secret_name": "bulkmail/ses-keys"},
        ).status
        == 200
    )

    # Stored templates (issue 16): versions, the list, a version, a preview, a campaign that names one.
    starter = api.request("GET", "/starter-templates").json()["templates"][0]
    assert api.request("POST", "/templates", json_body=starter).status == 201
    tid = starter["template_id"]
    assert api.request("PUT", f"/templates/{tid}", json_body={**starter, "subject": "v2"}).status == 200
    assert api.request("GET", "/templates").status == 200
    assert api.request("GET", f"/templates/{tid}?version=1").status == 200
    preview = {"contact": {"email": "a@example.org"}}
    assert api.request("POST", f"/templates/{tid}/preview", json_body=preview).status == 200
    from_template = {k: v for k, v in campaign.items() if k not in ("subject", "body", "body_html")}
    archived = {"archive": True, "list": "beta"}  # and in the public archive
    r = api.request(
        "POST", "/campaigns", json_body={**from_template, **archived, "campaign_id": "tpl", "template_id": tid}
    )
    assert r.status == 202, r.body
    finished(api, "tpl")

    # Control: edit, pause, resume (parked batches go back on the queue), cancel; SES pausing sending.
    rt.pause_workers()
    rt.faults = ScriptedFaults(ses={first: ["SendingPausedException"]})
    for name in ("ctl_resume", "ctl_cancel"):
        assert api.request("POST", "/campaigns", json_body={**campaign, "campaign_id": name}).status == 202
        # Batches on the queue (the API stores the record before the workflow fans out), for the
        # workers to park when they meet the paused campaign.
        h.wait_for_campaign(name, lambda record: int(record.get("queued_count", 0)) > 0)
    assert api.request("PATCH", "/campaigns/ctl_resume", json_body={"subject": "Edited {{first_name}}"}).status == 200
    for name in ("ctl_resume", "ctl_cancel"):
        assert api.request("POST", f"/campaigns/{name}/pause").status == 200
    rt.resume_workers()
    time.sleep(1)  # workers meet the paused campaigns and park their batches
    assert api.request("POST", "/campaigns/ctl_cancel/cancel").status == 200
    assert api.request("POST", "/campaigns/ctl_resume/resume").status == 200
    paused = eventually(
        lambda: (
            api.request("GET", "/campaigns/ctl_resume").json().get("status") == "paused"
            and api.request("GET", "/campaigns/ctl_resume").json()
        )
    )  # SES paused sending
    assert paused["status"] == "paused"
    rt.faults = None
    assert api.request("POST", "/campaigns/ctl_resume/resume").status == 200
    finished(api, "ctl_resume")
    finished(api, "ctl_cancel")

    # A campaign sent with another account's SES keys (the worker reads them from SecretsPrefix; from a
    # cold start: in one process the API's container cached the secret).
    new_container()
    assert (
        api.request(
            "POST",
            "/campaigns",
            json_body={**campaign, "campaign_id": "other_account", "aws_secret_name": "bulkmail/ses-keys"},
        ).status
        == 202
    )
    finished(api, "other_account")

    # A campaign slower than a worker may sleep for: its batch goes back on the queue, delayed to its
    # next slot (the worker's own SendMessage).
    slow = [{"email": f"slow{i}@example.org", "first_name": "Slow", "lists": ["slow"]} for i in range(2)]
    assert api.request("POST", "/contacts", json_body={"contacts": slow}).status == 200
    # slow1's membership row as a crash leaves it (key only, before its copy was written): the fan-out
    # reads slow1's contact item to decide (BatchGetItem), and still sends to it.
    rt.table("AudienceTable").put_item(Item={"pk": "list#slow", "sk": "slow1@example.org"})
    assert (
        api.request(
            "POST", "/campaigns", json_body={**campaign, "campaign_id": "slow", "list": "slow", "max_send_rate": 0.5}
        ).status
        == 202
    )
    assert finished(api, "slow")["sent_count"] == 2

    # A tracked campaign: sent with the tracked configuration set; its deliveries and an open go through
    # the default bus to FeedbackFunction (markers, counters, the ledger row); the report reads them.
    readers = [{"email": f"reader{i}@example.org", "lists": ["tracked", "weekly"]} for i in range(2)]
    assert api.request("POST", "/contacts", json_body={"contacts": readers}).status == 200
    tracked = {
        **campaign,
        "campaign_id": "tracked",
        "list": "tracked",
        "body_html": '<html><body><a href="https://example.org/">Read</a></body></html>',
        "track_opens": True,
        "track_clicks": True,
    }
    assert api.request("POST", "/campaigns", json_body=tracked).status == 202
    assert finished(api, "tracked")["sent_count"] == 2
    rt.outbox.flush()
    html = h.sent_messages("tracked")[0].get_body(("html",)).get_content()
    assert rt.ses_events is not None and rt.ses_events.opened(re.search(r"/track/open/([^\"]+)", html).group(1))
    assert rt.ses_events.wait_idle()  # EventBridge's delivery to FeedbackFunction is asynchronous
    report = api.request("GET", "/campaigns/tracked/report").json()
    assert (report["delivered"], report["opens_unique"]) == (2, 1), report
    # Its one-click unsubscribe: the recipient leaves the campaign's list and stays on the other
    # (unsubscribe_scope "list"); counted in the report.
    leaving = h.sent_messages("tracked")[1]
    token = str(leaving["List-Unsubscribe"]).split(",")[0].strip("<> ").rsplit("/", 1)[1]
    unsubscribe = next(f for f in rt.functions.values() if f.logical_id == "UnsubscribeFunction")
    assert unsubscribe.invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))["statusCode"] == 200
    assert eventually(lambda: api.request("GET", "/campaigns/tracked/report").json()["unsubscribes"] == 1)

    # Scheduled campaigns: one fires (as the scheduler's role), one is cancelled before.
    def soon(seconds):
        return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="seconds")

    for name, when in (("sched_fires", soon(2)), ("sched_cancelled", soon(3600))):
        r = api.request("POST", "/campaigns", json_body={**campaign, "campaign_id": name, "send_at": when})
        assert r.status == 202, r.body
    assert api.request("POST", "/campaigns/sched_cancelled/cancel").status == 200
    assert finished(api, "sched_fires")["status"] == "completed"

    # Feedback: a bounce and a complaint for recipients of the demo.
    feedback = next(f for f in rt.functions.values() if f.logical_id == "FeedbackFunction")
    rows = {row["email"]: row for row in h.ledger.deliveries_for(demo) if row["status"] == "sent"}
    (a, row_a), (b, row_b), (c, _) = list(rows.items())[2:5]
    for _ in range(2):  # EventBridge delivers at least once: the second finds the contact suppressed
        feedback.invoke(ses_event(BOUNCE, demo, a, row_a["message_id"]))
    feedback.invoke(ses_event(COMPLAINT, demo, b, row_b["message_id"]))
    # EventBridge writing an undeliverable feedback event to the dead-letter queue.
    rt.iam.deliver_as_service(
        "events.amazonaws.com",
        "sqs:SendMessage",
        rt.attributes[("FeedbackDeadLetterQueue", "Arn")],
        rt.attributes[("FeedbackFunctionBouncesAndComplaints", "Arn")],
    )

    # The public archive (issue 16): an archived campaign, its list's index and feed.
    public = ApiGateway(next(f for f in rt.functions.values() if f.logical_id == "UnsubscribeFunction"))
    for path in ("/archive/tpl", "/archive/lists/beta", "/archive/lists/beta/feed"):
        assert public.request("GET", path).status == 200, path

    # Unsubscribe, from a cold start (in one process, another function's container cached the key).
    rt.outbox.flush()
    message = next(m for m in h.sent_messages(demo) if m["To"].addresses[0].addr_spec == c)
    token = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
    unsubscribe = next(f for f in rt.functions.values() if f.logical_id == "UnsubscribeFunction")
    new_container()
    assert unsubscribe.invoke(api_event("GET", token))["statusCode"] == 200
    for _ in range(2):  # a second click finds the contact unsubscribed already
        assert unsubscribe.invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))["statusCode"] == 200

    # Signup (issue 15): a new address (a pending contact) and a contact's, each confirmed with the button;
    # preferences: the demo's recipient keeps none of their lists.
    public = ApiGateway(unsubscribe)
    contacts_on_news = [{"email": "member@example.org", "lists": ["news"]}]
    assert api.request("POST", "/contacts", json_body={"contacts": contacts_on_news}).status == 200
    for address in ("joiner@example.org", "member@example.org"):
        signup = {"email": address, "list": "news", "consent": True}
        assert public.request("POST", "/subscribe", json_body=signup).status == 202
        rt.outbox.flush()
        [mail] = (outbox / "no-campaign").glob(f"{address}.*.eml")
        text = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default).get_content()
        link = re.search(r"/subscribe/confirm/\S+", text).group(0)
        assert public.request("GET", link).status == 200
        assert public.request("POST", link, body="confirm=yes", headers=FORM).status == 200
    other = next(m for m in h.sent_messages(demo) if m["To"].addresses[0].addr_spec == a)
    other_token = str(other["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
    saved = public.request("POST", f"/unsubscribe/{other_token}/preferences", body="preferences=save", headers=FORM)
    assert saved.status == 200, saved.body
    # end signup

    # ---- audience (issue 15): lists, a segment, a person's data exported and erased ----
    assert api.request("POST", "/lists", json_body={"list_id": "extra", "description": "d"}).status == 201
    segment = {"segment_id": "seg", "lists": ["slow"], "match": [{"field": "first_name", "op": "eq", "value": "Slow"}]}
    assert api.request("POST", "/segments", json_body=segment).status == 201
    assert api.request("GET", "/segments/seg/count").json()["count"] == 2
    assert api.request("DELETE", "/segments/seg").status == 204
    assert api.request("DELETE", "/lists/extra").status == 204
    # The link in the list campaign's email: slow0 leaves "slow" and stays on "more".
    assert api.request("PATCH", "/contacts/slow0@example.org", json_body={"lists": ["slow", "more"]}).status == 200
    rt.outbox.flush()
    message = next(m for m in h.sent_messages("slow") if m["To"].addresses[0].addr_spec == "slow0@example.org")
    token = str(message["List-Unsubscribe"]).strip("<>").rsplit("/", 1)[1]
    assert unsubscribe.invoke(api_event("POST", token, "List-Unsubscribe=One-Click"))["statusCode"] == 200
    assert api.request("GET", "/contacts/slow0@example.org").json()["lists"] == ["more"]
    person = contacts[2]["email"]
    assert api.request("GET", f"/contacts/{person}/export").json()["deliveries"]
    assert api.request("DELETE", f"/contacts/{person}?erase=true").status == 204
    # ---- end audience ----

    # Last, as it takes the state machine away: a scheduled start that fails (dead-lettered by the
    # scheduler with its role, marked failed by ScheduleFailedFunction).
    r = api.request("POST", "/campaigns", json_body={**campaign, "campaign_id": "sched_fails", "send_at": soon(2)})
    assert r.status == 202, r.body
    rt.client("stepfunctions").delete_state_machine(stateMachineArn=rt.state_machine_arn)
    h.wait_for_campaign("sched_fails", lambda record: record["status"] == "failed", timeout=60)
    eventually(lambda: not any(h.queue_depth("ScheduleFailureQueue").values()))  # its message deleted


def _short(arn: str, suffix: str) -> str:
    return arn.split(":", 5)[-1].replace("bulkmail-", "").replace(f"-{suffix}", "")


@pytest.mark.longest
def test_every_request_is_allowed_and_every_granted_action_is_used(tmp_path):
    outbox = tmp_path / "outbox"
    with EmbeddedRuntime(
        outbox=outbox,
        parameters={
            "FanoutPageSize": 50,
            "RecipientsPerMessage": 10,
            "BacklogSeconds": 0,
            "StepsPerExecution": 4,
            "ContactEvents": "true",  # the feedback and unsubscribe functions publish contact-level events
        },
    ) as rt:
        exercise(rt, outbox)
        authorizer = rt.iam
        # Executions of other runtimes in this process (daemon threads of earlier tests) are not ours.
        denied = {k: n for k, n in authorizer.denied.items() if rt._suffix in k[2] or "bulkmail-" not in k[2]}
        lines = []
        for (principal, action, resource), n in sorted(authorizer.authorized.items()):
            who = authorizer.roles[principal].used_by if principal in authorizer.roles else principal
            lines.append(f"{who}\t{action}\t{_short(resource, rt._suffix)}\t{n}")
        table = "\n".join(lines)
        (tmp_path / "iam-checked.tsv").write_text(table + "\n")
        print("\nprincipal\taction\tresource\trequests\n" + table)

        assert denied == {}, f"requests the roles refused: {denied}"
        spare = []
        for arn, role in authorizer.roles.items():
            for grant in authorizer.unused(arn):
                resource = _short(grant.resource, rt._suffix).split("/")[-1]
                keys = [
                    (role.logical_id, grant.action),
                    ("*", grant.action),
                    (role.logical_id, f"{grant.action}@{resource}"),
                ]
                if not any(k in UNREACHABLE for k in keys):
                    spare.append((role.logical_id, grant.policy, grant.action, resource))
        assert spare == [], "granted but never used:\n" + "\n".join(map(str, spare))
