"""A short fault-injection run (`make chaos` runs many seeds): the audit must find nothing."""

import pytest

from bulkmail_local.chaos import run_chaos
from bulkmail_local.runtime.faults import FaultRates

# Higher crash rates than `bulkmail chaos` uses, so that a short run still crashes at every point.
RATES = FaultRates(
    crash_after_claim=0.15, crash_after_ses_accepted=0.01, crash_before_record=0.15, duplicate_delivery=0.2
)


@pytest.mark.longest
@pytest.mark.parametrize("seed", [11, 12])
def test_no_duplicates_no_loss_exact_counters_under_faults(tmp_path, seed):
    result = run_chaos(contacts=200, seed=seed, outbox=tmp_path, rates=RATES)
    assert result["execution_status"] == "SUCCEEDED", result
    assert result["duplicates"] == 0, result
    assert result["lost"] == 0, result
    assert result["counter_mismatches"] == 0, result
    assert result["eml_agrees_with_record"], result
    assert result["final"]["status"] in ("completed", "cancelled")
    injected = result["faults_injected"]
    assert injected.get("ses_throttled", 0) > 0 and injected.get("ses_rejected", 0) > 0
    assert injected.get("duplicate_delivery", 0) > 0
    assert injected.get("crash_after_claim", 0) + injected.get("crash_before_record", 0) > 0, injected
    # DynamoDB's write faults, on the workers' writes and on those of the other parts.
    assert injected.get("dynamodb_conflict", 0) > 0, injected
    assert injected.get("dynamodb_faults@SendEmailsFunction", 0) > 0, injected
    assert sum(v for k, v in injected.items() if k.startswith("dynamodb_faults@") and "SendEmails" not in k) > 0, (
        injected
    )
    assert result["final"]["bounced_count"] == injected.get("bounce_delivered_twice", 0)
    # The contacts were imported through the API under the faults: each stored, its list registered.
    assert result["contacts_import_ok"] and result["contacts_stored"] == 200 + 8, result  # and 8 signups
    # The campaign went to a segment by the membership index: every member of it, nobody else.
    assert result["memberships_missing"] == 0 and result["outside_audience"] == 0, result
    # 200 less every 10th, the 3 signups confirmed before it, and those confirmed while it sent that it met
    assert 180 + 3 <= result["final"]["total_contacts"] <= 180 + 6, result
    # Signups confirmed before the campaign are in it once; those confirmed while it sends at most once;
    # a signup never confirmed is never mailed.
    assert result["signup"]["ok"] and injected["signup_confirmed"] == 6, result["signup"]
    # For part of the run the rate was too slow for a worker to wait: batches went back to the queue.
    assert injected.get("pacing_deferred", 0) > 0, injected
    # SES's rejections leave failed recipients: a double-clicked re-send reaches exactly them, once.
    resend = result["resend"]
    assert injected["resend_double_click"] == 1, injected
    assert resend["original_failed"] == result["final"]["failed_count"] > 0, resend
    assert resend["execution_status"] == "SUCCEEDED" and resend["final"]["status"] == "completed", resend
    assert resend["final"]["sent_count"] > 0, resend
    assert resend["family_duplicates"] == 0 and resend["lost"] == 0 and resend["not_failed_in_original"] == 0, resend
    assert resend["counter_mismatches"] == 0, resend
    assert result["ok"]
