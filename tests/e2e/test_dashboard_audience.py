"""The audience pages in a real browser against a real `bulkmail serve`: contacts (filters, paging, edit,
CSV export), lists and segments with live counts, and a campaign to a segment from the new-campaign form."""

import json

from playwright.sync_api import expect

from tests.e2e.test_dashboard import browser, fill_campaign, import_csv, page, shot, stack  # noqa: F401 (fixtures)

MANY = 60  # more than one page (50) of contacts


def test_lists_and_segments_pages_count_live_and_a_segment_is_a_campaigns_audience(page, stack, tmp_path):  # noqa: F811
    import_csv(
        page,
        tmp_path,
        "email,first_name,lists,plan\n"
        + "".join(f"a{i}@example.org,A{i},alpha,{'pro' if i < 3 else 'free'}\n" for i in range(6))
        + "".join(f"b{i}@example.org,B{i},beta,free\n" for i in range(3)),
    )
    expect(page.get_by_text("Imported 9 contacts.")).to_be_visible()

    page.goto("/#/lists")
    alpha, beta = page.locator("tr[data-list=alpha]"), page.locator("tr[data-list=beta]")
    expect(alpha.locator("[data-count=members]")).to_have_text("6")
    expect(alpha.locator("[data-count=subscribed]")).to_have_text("6")
    expect(beta.locator("[data-count=members]")).to_have_text("3")
    page.get_by_label("List id").fill("gamma")
    page.get_by_role("button", name="Create list").click()
    expect(page.locator("tr[data-list=gamma] [data-count=members]")).to_have_text("0")
    page.get_by_label("List id").fill("gamma")
    page.get_by_role("button", name="Create list").click()  # exists: the API's 409 beside the field
    expect(page.locator("#field-list_id-error")).not_to_be_empty()
    # live: a contact joins beta elsewhere, the open page counts it without a reload
    joined = page.request.post("/contacts", data={"contacts": [{"email": "b9@example.org", "lists": ["beta"]}]})
    assert joined.ok, joined.text()
    expect(beta.locator("[data-count=members]")).to_have_text("4")
    shot(page, "lists")

    page.goto("/#/segments")
    page.get_by_label("Segment id").fill("pro-alpha")
    page.get_by_label("Lists").fill("alpha")
    page.get_by_label("Field").fill("plan")
    page.get_by_label("Operator").select_option("eq")
    page.get_by_label("Value").fill("pro")
    page.get_by_role("button", name="Create segment").click()
    row = page.locator("tr[data-segment=pro-alpha]")
    expect(row.locator("[data-count=recipients]")).to_have_text("3")
    page.get_by_label("Segment id").fill("broken")
    page.get_by_label("Lists").fill("alpha")
    page.get_by_label("Field").fill("plan")
    page.get_by_label("Operator").select_option("lt")
    page.get_by_label("Value").fill("not a number")
    page.get_by_role("button", name="Create segment").click()  # 400: shown, nothing stored
    expect(page.locator(".segment-form [data-error-for=match]")).to_contain_text("match[0].value")
    expect(page.locator("tr[data-segment=broken]")).to_have_count(0)
    # live: a pro contact joins alpha, the segment's count follows
    page.request.post(
        "/contacts", data={"contacts": [{"email": "a9@example.org", "lists": ["alpha"], "attributes": {"plan": "pro"}}]}
    )
    expect(row.locator("[data-count=recipients]")).to_have_text("4")
    shot(page, "segments")

    fill_campaign(page, name="Pro news", sender="news@example.com", subject="Hi {{first_name}}", body="For pro users.")
    page.get_by_label("Audience").select_option("segment:pro-alpha")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/#/campaigns/campaign_*")
    expect(page.locator(".page-head .badge")).to_have_text("completed")
    expect(page.locator("[data-counter=sent]")).to_have_text("4")


def test_contacts_page_filters_pages_edits_and_exports(page, stack, tmp_path):  # noqa: F811
    import_csv(
        page,
        tmp_path,
        "email,first_name,lists,plan\n"
        + "".join(f"m{i:02}@example.org,M{i},many,{'pro' if i % 2 else 'free'}\n" for i in range(MANY)),
    )
    expect(page.get_by_text(f"Imported {MANY} contacts.")).to_be_visible()
    signed_up = page.request.post("/subscribe", data={"email": "pending@example.org", "list": "many", "consent": True})
    assert signed_up.status == 202, signed_up.text()

    page.goto("/#/audience")
    page.get_by_label("List").select_option("many")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.contacts tbody tr")
    expect(rows.first).to_be_visible()
    more = page.get_by_role("button", name="Load more")
    expect(rows).to_have_count(50)  # a page
    more.click()
    expect(rows).to_have_count(MANY + 1)
    expect(more).to_be_hidden()

    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".badge")).to_have_text("pending")

    page.get_by_label("Status").select_option("")
    page.get_by_label("Attribute").fill("plan")
    page.get_by_label("Value").fill("pro")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(MANY // 2)  # the page reads on until it has a page's worth, or the end
    assert "field=plan&value=pro" in page.url  # the filters are in the address
    shot(page, "audience")

    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    exported = download.value.path().read_text()
    header, *lines = exported.strip().splitlines()
    assert "email" in header and "plan" in header and len(lines) == MANY + 1

    page.get_by_role("link", name="m01@example.org").click()
    page.get_by_label("First name").fill("Marta")
    page.get_by_label("Attributes (JSON)").fill("{not json")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#field-attributes-error")).to_contain_text("is not JSON")
    page.get_by_label("Attributes (JSON)").fill(json.dumps({"plan": "enterprise", "seats": 12}))
    page.get_by_label("Lists").fill("many, vip")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Saved.")).to_be_visible()
    stored = page.request.get("/contacts/m01@example.org").json()
    assert stored["first_name"] == "Marta" and stored["attributes"] == {"plan": "enterprise", "seats": 12}
    assert sorted(stored["lists"]) == ["many", "vip"]
    shot(page, "contact-edit")
