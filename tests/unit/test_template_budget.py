"""Templates have budgets: what can never render is refused at validation, naming the field, and a
render stops at its time, step and size caps instead of holding a worker or the API."""

import threading
import time

import pytest

from bulkmail.errors import CampaignInvalid, TemplateBudgetExceeded
from bulkmail.models import Contact
from bulkmail.rendering import MAX_RENDER_SECONDS, MAX_RENDERED_CHARS, render, template_problems
from bulkmail.validation import validate_campaign

BASE = {
    "campaign_name": "n",
    "subject": "Hi {{first_name}}",
    "body": "Dear {{first_name}}",
    "from_email": "a@example.org",
}


@pytest.mark.parametrize(
    "field, template, problem",
    [
        ("body", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "template budget"),
        ("body", "{{'x'*20000000}}", f"more than {MAX_RENDERED_CHARS} characters"),
        ("body_html", "{% include 'footer.html' %}", "{% include %} is not available"),
        ("body", "{% import 'macros' as m %}", "{% import %} is not available"),
        ("body", "{% extends 'base' %}", "{% extends %} is not available"),
        ("subject", "{{ ''.__class__ }}", "sandbox forbids internals"),
        ("subject", "{{ ''['__class__'] }}", "sandbox forbids internals"),
        ("body", "{{ first_name|nosuchfilter }}", "No filter named 'nosuchfilter'"),
        ("body", "{{ first_name|center(100000000) }}", "No filter named 'center'"),
        ("body", "{% set seen = [] %}{{ seen.append(1) }}", "the sandbox forbids it"),
        ("body", "{{ '%99999999d' % 1 }}", "format widths"),
        ("body", "{{ '{:>99999999}'.format(1) }}", "format widths"),
        ("body", "{{ ('x' * 600000) | replace('x', 'yy') }}", "characters"),
        ("body", "{% macro grow(s) %}{{ grow(s ~ s) }}{% endmacro %}{{ grow('x') }}", "characters"),
        ("body", "{{ lipsum(1000000) }}", "unknown placeholder {{lipsum}}"),
        ("body", "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "recursive loops"),
    ],
)
def test_validation_refuses_what_can_never_render_naming_the_field(field, template, problem):
    started = time.thread_time()  # CPU time, as the budget: the machine's load does not count
    with pytest.raises(CampaignInvalid) as caught:
        validate_campaign({**BASE, field: template})
    assert time.thread_time() - started < 5 * MAX_RENDER_SECONDS + 1
    errors = [e for e in caught.value.errors if e["field"] == field]
    assert errors and problem in errors[0]["message"], caught.value.errors


def test_ordinary_templates_pass():
    for template in (
        "{% for k, v in attributes|dictsort %}{{k}}={{v}} {% endfor %}",
        "{{ first_name|default('friend')|title }} {{ attributes.plan|upper }} {{ '%05d' % 42 }}",
        "{% if company %}at {{ company }}{% endif %}{{ range(3)|join(',') }}",
    ):
        assert template_problems(template) == [], template


def test_a_loop_over_a_contact_value_stops_at_the_budget_when_rendered():
    """The contact decides this one, so it passes validation and fails that recipient alone."""
    campaign = {
        **BASE,
        "campaign_id": "c",
        "body": "{% for a in attributes.bio %}{% for b in attributes.bio %}{% endfor %}{% endfor %}",
    }
    validate_campaign(campaign)
    started = time.thread_time()
    with pytest.raises(TemplateBudgetExceeded):
        render(campaign, Contact(email="a@example.org", attributes={"bio": "x" * 100_000}))
    assert time.thread_time() - started < MAX_RENDER_SECONDS + 0.5
    assert render(campaign, Contact(email="b@example.org", attributes={"bio": "short"})).text.startswith("")


def test_an_ordinary_render_slowed_by_other_threads_is_within_its_budget():
    """The budget is the render's CPU time: a worker that waits for the CPU (other threads here, a
    small Lambda's share of a core on AWS) still sends the email. Twelve threads spinning take most of
    the interpreter's turns, so this render's wall time is several times its own CPU time."""
    campaign = {**BASE, "campaign_id": "c", "body": "{% for i in range(20000) %}{{ i }} {% endfor %}"}
    stop = threading.Event()

    def spin() -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            sum(range(1000))

    spinners = [threading.Thread(target=spin) for _ in range(12)]
    for thread in spinners:
        thread.start()
    try:
        started, cpu = time.monotonic(), time.thread_time()
        rendered = render(campaign, Contact(email="a@example.org"))
        waited, used = time.monotonic() - started, time.thread_time() - cpu
    finally:
        stop.set()
        for thread in spinners:
            thread.join()
    assert rendered.text.startswith("0 1 2")
    assert used < MAX_RENDER_SECONDS < waited, (used, waited)  # slowed past the cap, yet not over budget


def test_rendered_output_is_capped_while_it_is_generated():
    campaign = {**BASE, "campaign_id": "c", "body": "{% for i in range(20000) %}{{ attributes.bio }}{% endfor %}"}
    validate_campaign(campaign)
    with pytest.raises(TemplateBudgetExceeded, match="rendered text"):
        render(campaign, Contact(email="a@example.org", attributes={"bio": "x" * 100}))


@pytest.mark.parametrize(
    "template", ["{{ ((10**1000)**1000)**1000 }}", "{% macro sq(n) %}{{ sq(n * n) }}{% endmacro %}{{ sq(10**100) }}"]
)
def test_big_numbers_stop_before_c_arithmetic_runs_away(template):
    started = time.thread_time()
    assert "template budget" in " ".join(template_problems(template))
    assert time.thread_time() - started < 1
