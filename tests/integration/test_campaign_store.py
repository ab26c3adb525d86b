"""CampaignStore.create keeps the recipient estimate it is given (it used to be zeroed, which let
`bulkmail demo` see queued_count >= total_contacts before the fan-out had queued anyone)."""


def test_create_keeps_the_recipient_estimate_and_zeroes_the_other_counters(harness):
    c = harness.add_campaign(total=7)
    record = harness.campaigns.get(c["campaign_id"])
    assert record["total_contacts"] == 7
    assert [record[k] for k in ("queued_count", "sent_count", "failed_count", "skipped_count", "processed_count")] == [0] * 5
    assert record["fanout_done"] is False
