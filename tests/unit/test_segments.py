"""Segments' conditions and custom CSV columns: the pure rules behind lists, segments and imports."""

import pytest

from bulkmail.contact_import import parse_contacts_csv, patch_problems
from bulkmail.errors import InputInvalid
from bulkmail.segments import campaign_audience, matches, segment_problems

PRO = {
    "email": "a@example.org",
    "status": "subscribed",
    "attributes": {"plan": "pro", "seats": "12", "since": "2025-03-01"},
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "plan", "op": "eq", "value": "pro"}, True),
        ({"field": "attributes.plan", "op": "eq", "value": "pro"}, True),
        ({"field": "plan", "op": "neq", "value": "pro"}, False),
        ({"field": "plan", "op": "in", "value": ["free", "pro"]}, True),
        ({"field": "plan", "op": "contains", "value": "PR"}, True),
        ({"field": "seats", "op": "gt", "value": 9}, True),  # the CSV's text "12" compares as a number
        ({"field": "seats", "op": "lt", "value": 9}, False),
        ({"field": "seats", "op": "eq", "value": 12}, True),
        ({"field": "since", "op": "lt", "value": "2025-06-01"}, True),
        ({"field": "since", "op": "gt", "value": "2025-06-01T00:00:00Z"}, False),
        ({"field": "company", "op": "exists"}, False),
        ({"field": "company", "op": "exists", "value": False}, True),
        ({"field": "company", "op": "neq", "value": "Acme"}, True),
        ({"field": "status", "op": "eq", "value": "subscribed"}, True),
        ({"field": "plan", "op": "gt", "value": 3}, False),  # text that is no number never matches a number
    ],
)
def test_each_operator_on_text_numbers_and_dates(condition, expected):
    assert segment_problems({"segment_id": "s", "lists": ["l"], "match": [condition]}) == []
    assert matches(PRO, [condition]) is expected


def test_conditions_are_anded_and_status_defaults_to_subscribed():
    assert matches({"email": "b@x.org"}, [{"field": "status", "op": "eq", "value": "subscribed"}])
    both = [{"field": "plan", "op": "eq", "value": "pro"}, {"field": "seats", "op": "gt", "value": 20}]
    assert not matches(PRO, both)


def test_bad_segments_name_the_field():
    problems = segment_problems(
        {
            "segment_id": "bad id",
            "lists": [],
            "match": [{"field": "plan", "op": "like", "value": "x"}, {"field": "a-b", "op": "eq", "value": 1}],
            "colour": "red",
        }
    )
    fields = {p["field"] for p in problems}
    assert fields == {"colour", "segment_id", "lists", "match[0].op", "match[1].field"}
    assert (
        segment_problems({"segment_id": "s", "lists": ["l"], "match": [{"field": "d", "op": "lt", "value": "soon"}]})[
            0
        ]["field"]
        == "match[0].value"
    )


def test_campaign_audience_from_segment_list_or_everyone():
    assert campaign_audience({"audience": {"lists": ["a", "b"], "match": []}}) == {"lists": ["a", "b"], "match": []}
    assert campaign_audience({"list": "news"}) == {"lists": ["news"], "match": []}
    assert campaign_audience({}) is None


def test_csv_custom_columns_become_attributes_typed_when_declared():
    rows, lines, problems = parse_contacts_csv(
        "email,first_name,plan,seats:number,vip:boolean,lists\n"
        "a@example.org,Ada,pro,12,yes,news;vip\n"
        "b@example.org,,free,many,no,\n"
    )
    assert rows[0] == {
        "email": "a@example.org",
        "first_name": "Ada",
        "lists": ["news", "vip"],
        "attributes": {"plan": "pro", "seats": 12, "vip": True},
    }
    assert lines == [2, 3]
    assert problems == {1: "seats: 'many' is not a number"}


def test_csv_header_problems_name_the_column():
    with pytest.raises(InputInvalid) as bad_name:
        parse_contacts_csv("email,first name\na@example.org,x\n")
    assert bad_name.value.errors[0]["field"] == "first name"
    with pytest.raises(InputInvalid) as bad_type:
        parse_contacts_csv("email,age:integer\n")
    assert bad_type.value.errors[0]["field"] == "age:integer"
    with pytest.raises(InputInvalid) as no_email:
        parse_contacts_csv("name\nx\n")
    assert no_email.value.errors[0]["field"] == "email"


def test_patch_problems():
    assert patch_problems({"attributes": {"plan": "pro", "old": None}, "lists": ["a"], "status": "unsubscribed"}) == []
    assert patch_problems({"status": "bounced"})[0]["field"] == "status"
    assert patch_problems({"email": "x@y.z"})[0]["field"] == "email"
    assert patch_problems({"attributes": {"bad-name": 1}})[0]["field"].startswith("attributes")


def test_attributes_keep_their_json_types():
    from bulkmail.contact_import import normalise_contacts

    items, rejected = normalise_contacts([{"email": "a@example.org", "attributes": {"n": 3, "vip": True, "p": "x"}}])
    assert rejected == [] and items[0]["attributes"] == {"n": 3, "vip": True, "p": "x"}
    _, bad = normalise_contacts([{"email": "b@example.org", "attributes": {"p": "two\nlines"}}])
    assert bad[0]["field"] == "attributes.p"


def test_cli_parses_audience_commands():
    from bulkmail_local.cli import build_parser
    from bulkmail_local.cli.audience import _condition

    args = build_parser().parse_args(
        ["segments", "create", "s", "--list", "a", "--list", "b", "--match", "seats:gt:10", "--match", 'plan:in:["a"]']
    )
    assert (args.lists, args.match) == (
        ["a", "b"],
        [{"field": "seats", "op": "gt", "value": 10}, {"field": "plan", "op": "in", "value": ["a"]}],
    )
    assert _condition("company:exists") == {"field": "company", "op": "exists"}
    assert _condition("plan:eq:pro") == {"field": "plan", "op": "eq", "value": "pro"}
    assert build_parser().parse_args(["lists", "create", "news", "--name", "News"]).name == "News"
    assert build_parser().parse_args(["contacts", "export", "--list", "news"]).list == "news"
