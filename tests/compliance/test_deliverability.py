"""The deliverability check: the demo's email and each starter template's, as the worker sends them,
judged by SpamAssassin (Debian's `spamassassin -t -L`: local tests only, no network) and parsed by
Python's `email` under the strict policy.

Below 1.0 points, and no structural rule (headers, MIME, HTML) firing. Skipped where SpamAssassin is
not installed; the strict parse runs everywhere.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess

import pytest

from bulkmail.templates import starter_templates
from bulkmail_local.runtime.stack import PROJECT_ROOT

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("deliverability")

SPAMASSASSIN = shutil.which("spamassassin")
MAX_SCORE = 1.0
# Rules about how the message is made, not what it says: any of them firing is a bug of ours.
STRUCTURAL = re.compile(
    r"^(T_)?(MISSING_|INVALID_|BAD_ENC|MIME_|MPART_|HTML_MIME|HTML_TAG_|HTML_EXTRA_CLOSE|HTML_IMAGE_|"
    r"HTML_SHORT_LINK|LIST_PARTIAL|MSGID_|TO_NO_BRKTS|FROM_EXCESS|DATE_IN_|HEADER_FROM_DIFFERENT|"
    r"HEAD_LONG|SUBJ_ALL_CAPS|EMPTY_MESSAGE|TVD_|BASE64_LENGTH|TRACKER_ID|NO_DNS_FOR_FROM)"
)
# Of the local stack only: its links are http://127.0.0.1:8000/... (on AWS, https://<api>.execute-api...).
LOCAL_ONLY = {"WEIRD_PORT", "NORMAL_HTTP_TO_IP", "NUMERIC_HTTP_ADDR", "HTTP_IP", "IP_LINK_PLUS"}

DEMO = json.loads((PROJECT_ROOT / "events" / "campaign.json").read_text())
CONTACT = json.loads((PROJECT_ROOT / "events" / "contacts.json").read_text())["contacts"][0]
CASES = {
    "demo": DEMO,
    **{
        s["template_id"]: {**DEMO, "campaign_name": s["name"], **{k: s[k] for k in ("subject", "body", "body_html")}}
        for s in starter_templates()
    },
}
# The newsletter as an archived campaign with opens and clicks tracked: the "view in browser" link, the
# links SES rewrites and its 1x1 image must not cost points either.
CASES["newsletter_tracked"] = {**CASES["newsletter"], "archive": True, "track_opens": True, "track_clicks": True}


@pytest.fixture(scope="module")
def sent(tmp_path_factory):
    """One email of each case, sent by the real worker through the embedded SES: the raw .eml bytes."""
    from bulkmail.validation import validate_campaign
    from bulkmail_local.runtime import EmbeddedRuntime
    from tests.conftest import Harness

    outbox = tmp_path_factory.mktemp("deliverability") / "outbox"
    with EmbeddedRuntime(outbox=outbox) as rt:
        rt.pause_workers()
        h = Harness(rt, outbox)
        h.add_contacts([CONTACT])
        for name, campaign in CASES.items():
            record = validate_campaign({**campaign, "campaign_id": name})
            h.campaigns.create({**record, "status": "queued", "total_contacts": 1, "max_send_rate": 14})
            h.enqueue(name, "b1", [CONTACT["email"]])
        h.drain()
        files = {name: sorted((outbox / name).glob("*.eml")) for name in CASES}
    assert all(len(f) == 1 for f in files.values()), files
    return {name: f[0].read_bytes() for name, f in files.items()}


def spamassassin(raw: bytes) -> tuple[float, list[str]]:
    assert SPAMASSASSIN is not None
    out = subprocess.run([SPAMASSASSIN, "-t", "-L"], input=raw, capture_output=True, timeout=120, check=True).stdout
    status = re.search(rb"^X-Spam-Status: .*?score=(-?[\d.]+) .*?tests=(.*?)\s+autolearn", out, re.M | re.S)
    assert status is not None, out[:2000]
    rules = [r for r in re.split(r"[,\s]+", status.group(2).decode()) if r and r != "none"]
    return float(status.group(1)), rules


@pytest.mark.parametrize("case", list(CASES))
def test_strict_parse(sent, case):
    msg = email.message_from_bytes(sent[case], policy=email.policy.strict)
    for _name, value in msg.items():  # the strict policy raises on any header defect
        str(value)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part.get_content().strip()
    assert msg["List-Unsubscribe"] and msg["Message-ID"] and msg["Date"]


@pytest.mark.skipif(SPAMASSASSIN is None, reason="SpamAssassin is not installed (Debian: apt install spamassassin)")
@pytest.mark.parametrize("case", list(CASES))
def test_spamassassin_scores_it_below_one_with_no_structural_rule(sent, case):
    score, rules = spamassassin(sent[case])
    structural = [r for r in rules if STRUCTURAL.match(r) and r not in LOCAL_ONLY]
    print(f"{case}: {score} {rules}")
    assert structural == [], f"{case}: structural rules fired: {structural} (all: {rules})"
    assert score < MAX_SCORE, f"{case}: SpamAssassin scored {score} ({rules})"
