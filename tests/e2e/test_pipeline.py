"""The whole pipeline: the real ASL on moto's interpreter, real handlers, the emulated event source."""

import email
import email.policy
import json
import subprocess
import sys

from tests.conftest import SEED_CAMPAIGN, people


def run(live, campaign, timeout=120):
    arn = live.rt.start_campaign(campaign)
    execution = live.rt.wait_for_execution(arn, timeout=timeout)
    return arn, execution


def test_campaign_runs_end_to_end_through_the_state_machine(live):
    live.add_contacts([*people(260), {"email": "unsub@example.org", "status": "unsubscribed"}])
    arn, execution = run(live, {**SEED_CAMPAIGN, "campaign_id": "e2e_1"})
    assert execution["status"] == "SUCCEEDED", execution
    path = live.rt.state_path(arn)
    assert path[:5] == [
        "IsContinuation",
        "ValidateCampaign",
        "PersistCampaign",
        "PublishCampaignStarted",
        "AdvanceCampaign",
    ]
    assert path[-4:] == ["MarkCompleted", "ReadCompletedCounts", "PublishCampaignCompleted", "CampaignCompleted"]
    rec = live.campaigns.get("e2e_1")
    assert rec["status"] == "completed" and rec["completed_at"]
    assert rec["total_contacts"] == 260 == rec["queued_count"]
    assert rec["sent_count"] + rec["failed_count"] + rec["skipped_count"] == 260 == rec["sent_count"]
    ledger = live.ledger.deliveries_for("e2e_1")
    assert len(ledger) == 260 and {r["status"] for r in ledger} == {"sent"}
    mails = live.sent_messages("e2e_1")
    assert len(mails) == 260
    by_rcpt = {m["To"].addresses[0].addr_spec: m for m in mails}
    assert "unsub@example.org" not in by_rcpt
    m = by_rcpt["person7@example.org"]
    assert m["Subject"] == "Hello First7!"
    text = m.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Dear First7 Last7, welcome to Smith & Sons <Ltd>\n\n--\n")  # + the unsubscribe footer
    assert str(m["List-Unsubscribe"]).strip("<>") in text
    assert "welcome to <b>Smith &amp; Sons &lt;Ltd&gt;</b>" in m.get_body(("html",)).get_content()


def test_fan_out_is_back_pressured_in_pages(tmp_path):
    from bulkmail_local.runtime import EmbeddedRuntime
    from tests.conftest import Harness

    # Small pages and no backlog allowance: the bound is one page, so the loop waits for the workers.
    with EmbeddedRuntime(
        outbox=tmp_path / "o", parameters={"FanoutPageSize": 50, "RecipientsPerMessage": 10, "BacklogSeconds": 0}
    ) as rt:
        h = Harness(rt, tmp_path / "o")
        h.add_contacts(people(180))
        arn, execution = run(h, {**SEED_CAMPAIGN, "campaign_id": "e2e_bp"})
        assert execution["status"] == "SUCCEEDED"
        path = rt.state_path(arn)
        # Each page leaves a backlog at the bound: the loop waits after each of the first three at least.
        assert path.count("WaitForProgress") >= 3 and path.count("AdvanceCampaign") >= 7
        rec = h.campaigns.get("e2e_bp")
        assert (rec["sent_count"], rec["total_contacts"], rec["fanout_page"]) == (180, 180, 4)


def test_invalid_campaign_fails_validation_and_persists_nothing(live):
    arn, execution = run(live, {**SEED_CAMPAIGN, "subject": "Hi {{frist_name}}", "from_email": "nope"})
    assert execution["status"] == "FAILED"
    assert execution["error"] == "CampaignInvalid"
    cause = json.loads(execution["cause"])
    assert "subject: unknown placeholder {{frist_name}}" in cause["errorMessage"]
    assert "from_email: 'nope' is not a valid email address" in cause["errorMessage"]
    assert live.rt.state_path(arn) == ["IsContinuation", "ValidateCampaign", "CampaignRejected"]
    assert live.rt.table("CampaignsTable").scan()["Count"] == 0


def test_empty_audience_completes_at_once(live):
    _arn, execution = run(live, {**SEED_CAMPAIGN, "campaign_id": "e2e_empty", "list": "nobody"})
    assert execution["status"] == "SUCCEEDED"
    rec = live.campaigns.get("e2e_empty")
    assert (rec["status"], rec["total_contacts"], rec["sent_count"]) == ("completed", 0, 0)


def test_list_targets_only_its_members(live):
    live.add_contacts(people(5, lists=["beta"]) + people(5, domain="other.example"))
    _, execution = run(live, {**SEED_CAMPAIGN, "campaign_id": "e2e_list", "list": "beta"})
    assert execution["status"] == "SUCCEEDED"
    assert live.campaigns.get("e2e_list")["sent_count"] == 5


def test_demo_command_prints_the_final_record_as_json(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bulkmail_local.cli",
            "demo",
            "--contacts",
            "300",
            "--json",
            "--outbox",
            str(tmp_path / "outbox"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["status"] == "completed"
    assert record["total_contacts"] == 300
    assert record["sent_count"] + record["failed_count"] + record["skipped_count"] == 300
    emls = list((tmp_path / "outbox" / record["campaign_id"]).glob("*.eml"))
    assert len(emls) == record["sent_count"]
    parsed = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.strict)
    assert parsed["X-Bulkmail-Campaign"] == record["campaign_id"]


def test_sample_demo_accounts_for_every_contact(tmp_path):
    from bulkmail_local.demo import run_demo

    result = run_demo(outbox=tmp_path / "outbox")
    c = result.campaign
    assert c["status"] == "completed"
    assert c["sent_count"] + c["failed_count"] + c["skipped_count"] == c["total_contacts"] >= 200
    assert result.skipped_reasons == {"contact_deleted": 1}
    assert result.eml_files == c["sent_count"]


def test_a_long_campaign_continues_in_new_executions_and_sends_once(tmp_path):
    """The 10M-contact plan, scaled down: a few steps per execution instead of 2,000, pages of 50."""
    from bulkmail_local.runtime import EmbeddedRuntime
    from tests.conftest import Harness

    steps = 4
    with EmbeddedRuntime(
        outbox=tmp_path / "o",
        parameters={"FanoutPageSize": 50, "RecipientsPerMessage": 10, "BacklogSeconds": 0, "StepsPerExecution": steps},
    ) as rt:
        h = Harness(rt, tmp_path / "o")
        h.add_contacts(people(220))
        first, execution = run(h, {**SEED_CAMPAIGN, "campaign_id": "e2e_long"})
        assert execution["status"] == "SUCCEEDED"
        assert rt.state_path(first)[-2:] == ["ContinueAsNewExecution", "ContinuedAsNewExecution"]

        chain, arn = [first], first
        while True:  # follow the chain: each execution names the next in its output
            output = json.loads(rt.describe_execution(arn)["output"])
            if "continued_as" not in output:
                break
            arn = output["continued_as"]["execution_arn"]
            assert arn.endswith(f":e2e_long.continued-{len(chain)}")
            chain.append(arn)
            assert len(chain) < 60, "the campaign never finished"
            assert rt.wait_for_execution(arn, timeout=120)["status"] == "SUCCEEDED"

        last_path = rt.state_path(chain[-1])
        assert last_path[0] == "IsContinuation" and "ValidateCampaign" not in last_path
        assert last_path[-4:] == [
            "MarkCompleted",
            "ReadCompletedCounts",
            "PublishCampaignCompleted",
            "CampaignCompleted",
        ]
        assert len(chain) >= 3
        # Announced once: a continuation neither persists nor announces the campaign again.
        assert [rt.state_path(arn).count("PublishCampaignStarted") for arn in chain] == [1] + [0] * (len(chain) - 1)
        for arn in chain:  # each execution keeps to its step budget; the step past it only hands over
            assert rt.state_path(arn).count("AdvanceCampaign") <= steps + 1
        rec = h.campaigns.get("e2e_long")
        assert (rec["status"], rec["sent_count"], rec["total_contacts"]) == ("completed", 220, 220)
        assert rec["execution_arn"] == chain[-1] and rec["continuations"] == len(chain) - 1
        sent_to = [m["To"].addresses[0].addr_spec for m in h.sent_messages("e2e_long")]
        assert sorted(sent_to) == sorted(p["email"] for p in people(220))  # everyone, once


def test_a_campaign_named_like_another_ones_continuation_does_not_capture_it(tmp_path):
    """Issue 12, finding 6: `x-continued-1`, created first, must not be taken for x's continuation."""
    from bulkmail_local.runtime import EmbeddedRuntime
    from tests.conftest import Harness

    with EmbeddedRuntime(
        outbox=tmp_path / "o",
        parameters={"FanoutPageSize": 50, "RecipientsPerMessage": 10, "BacklogSeconds": 0, "StepsPerExecution": 3},
    ) as rt:
        h = Harness(rt, tmp_path / "o")
        h.add_contacts(people(120))
        # Started as the API starts them: the execution is named after the campaign.
        rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "x-continued-1"}, name="x-continued-1")
        h.wait_for_campaign("x-continued-1", lambda r: r["status"] == "completed", timeout=120)
        rt.start_campaign({**SEED_CAMPAIGN, "campaign_id": "x"}, name="x")
        record = h.wait_for_campaign("x", lambda r: r["status"] == "completed", timeout=120)
        assert record["continuations"] >= 1 and record["sent_count"] == 120
        # Its execution is its own continuation, not the other campaign's finished one.
        own = json.loads(rt.describe_execution(record["execution_arn"])["input"])
        assert own["campaign_id"] == "x" and record["execution_arn"].endswith(f":x.continued-{record['continuations']}")
