"""CampaignStore.create keeps the recipient estimate it is given (it used to be zeroed, which let
`bulkmail demo` see queued_count >= total_contacts before the fan-out had queued anyone)."""


def test_create_keeps_the_recipient_estimate_and_zeroes_the_other_counters(harness):
    c = harness.add_campaign(total=7)
    record = harness.campaigns.get(c["campaign_id"])
    assert record["total_contacts"] == 7
    assert [record[k] for k in ("queued_count", "sent_count", "failed_count", "skipped_count", "processed_count")] == [
        0
    ] * 5
    assert record["fanout_done"] is False


def test_importing_again_never_resubscribes_a_suppressed_contact(harness):
    from bulkmail.adapters.contacts import suppress_contact

    h = harness
    h.add_contacts(
        [{"email": "a@example.org", "first_name": "Ann"}, {"email": "b@example.org"}, {"email": "c@example.org"}]
    )
    assert (
        suppress_contact(h.contacts, "a@example.org", "unsubscribed", "2026-11-27T00:00:00+00:00", {}) == "unsubscribed"
    )
    assert suppress_contact(h.contacts, "b@example.org", "bounced", "2026-11-27T00:00:00+00:00", {}) == "bounced"
    assert (
        suppress_contact(h.contacts, "a@example.org", "complained", "2026-11-27T00:00:01+00:00", {}) == "unsubscribed"
    )
    # An address that is not a contact keeps a suppression: importing it later cannot subscribe it.
    assert suppress_contact(h.contacts, "nobody@example.org", "bounced", "2026-11-27T00:00:00+00:00", {}) == "bounced"
    assert h.contacts.get("nobody@example.org") is None
    h.add_contacts(
        [
            {"email": "A@example.org", "first_name": "Anna"},
            {"email": "b@example.org", "status": "subscribed"},
            {"email": "c@example.org", "status": "unsubscribed"},
        ]
    )
    a, b, c = (h.contacts.get(f"{x}@example.org") for x in "abc")
    assert (a.status, a.first_name) == ("unsubscribed", "Anna")
    assert b.status == "bounced"
    assert c.status == "unsubscribed"  # an import may suppress
    assert h.contacts.get("nobody@example.org") is None


def test_an_unsubscribe_landing_between_an_imports_read_and_write_is_kept(harness):
    """The import reads a subscribed contact, then the contact unsubscribes, then the import writes:
    the write is conditional on what was read, so it is merged again and the unsubscribe stands."""
    from bulkmail.adapters import dynamo
    from bulkmail.adapters.contacts import suppress_contact

    h = harness
    h.add_contacts([{"email": "a@example.org", "first_name": "Ann"}])
    raced = []

    def unsubscribe_first(**_):
        if not raced:
            raced.append(
                suppress_contact(
                    h.contacts,
                    "a@example.org",
                    "unsubscribed",
                    "2026-11-27T00:00:00+00:00",
                    {"reason": "one-click unsubscribe"},
                )
            )

    events = dynamo.client().meta.events
    for operation in ("TransactWriteItems", "BatchWriteItem"):  # whichever the import writes with
        events.register_first(f"before-call.dynamodb.{operation}", unsubscribe_first, unique_id=f"race-{operation}")
    try:
        h.add_contacts([{"email": "a@example.org", "first_name": "Anna"}])
    finally:
        for operation in ("TransactWriteItems", "BatchWriteItem"):
            events.unregister(f"before-call.dynamodb.{operation}", unique_id=f"race-{operation}")
    assert raced == ["unsubscribed"]
    a = h.contacts.table.get_item(Key={"email": "a@example.org"})["Item"]
    assert (a["status"], a["first_name"], a["suppression"]["reason"]) == (
        "unsubscribed",
        "Anna",
        "one-click unsubscribe",
    )
