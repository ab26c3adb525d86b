"""The template store on the emulated DynamoDB: racing writers of one template each get a version of
their own (the conditional put), or a TemplateBusy to retry; nothing is overwritten."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bulkmail.adapters.templates import TemplateStore
from bulkmail.errors import TemplateBusy, TemplateExists

TEMPLATE = {"template_id": "raced", "subject": "s", "body_html": "<p>v</p>"}
WRITERS = 8


def test_racing_writers_never_share_or_overwrite_a_version(harness):
    store = TemplateStore(harness.rt.physical["TemplatesTable"])
    store.add_version(TEMPLATE, "2026-12-02T08:00:00.000+00:00", new=True)

    def write(n):
        try:  # a store per thread: boto3 resources are not shared across threads (one per container)
            return TemplateStore(store.table_name).add_version(
                {**TEMPLATE, "body_html": f"<p>{n}</p>"}, "2026-12-02T08:00:01.000+00:00", new=False
            )
        except TemplateBusy:
            return None

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(write, range(WRITERS)))
    stored = [r for r in results if r is not None]
    versions = sorted(r["version"] for r in stored)
    assert versions == list(range(2, 2 + len(stored))), versions  # unique, no gaps
    assert len(stored) >= 1
    for item in stored:  # each version holds what its writer wrote
        assert store.get("raced", item["version"])["body_html"] == item["body_html"]
    assert [v["version"] for v in store.versions("raced")] == sorted([*versions, 1], reverse=True)

    with pytest.raises(TemplateExists):
        store.add_version(TEMPLATE, "2026-12-02T08:00:02.000+00:00", new=True)
    assert store.get("raced", 1)["body_html"] == "<p>v</p>"
