"""docs/openapi.json is what the resolver generates, and it matches the template's API events."""

import json
from pathlib import Path

from bulkmail.api import app, openapi_document
from bulkmail.validation import INTERNAL_FIELDS, load_schema
from bulkmail_local.runtime.template import load_template

ROOT = Path(__file__).resolve().parents[2]
METHODS = {"get", "post", "put", "patch", "delete"}


def committed():
    return json.loads((ROOT / "docs" / "openapi.json").read_text())


def doc_routes(document):
    return {(path, method) for path, ops in document["paths"].items() for method in ops if method in METHODS}


def test_committed_document_is_the_generated_one():
    assert committed() == openapi_document(), "regenerate: python -m bulkmail.api > docs/openapi.json"


def test_document_lists_exactly_the_resolver_routes():
    resolver = {(r.openapi_path, r.method.lower()) for r in app._static_routes + app._dynamic_routes}
    assert len(resolver) == 29  # 16, and issue 15's lists, segments and contact data
    assert doc_routes(committed()) == resolver


def test_template_exposes_exactly_the_documented_routes_behind_iam():
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]
    events = resources["ApiFunction"]["Properties"]["Events"].values()
    assert {(e["Properties"]["Path"], e["Properties"]["Method"]) for e in events} == doc_routes(committed())
    assert resources["ManagementApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert committed()["security"] == [{"sigv4": []}]


def test_document_carries_the_one_campaign_schema_and_error_shape():
    document = committed()
    schema = document["components"]["schemas"]["Campaign"]
    client_fields = {k: v for k, v in load_schema("campaign")["properties"].items() if k not in INTERNAL_FIELDS}
    assert schema["properties"] == client_fields and "resend_of" in INTERNAL_FIELDS
    assert schema["required"] == load_schema("campaign")["required"]
    post = document["paths"]["/campaigns"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Campaign"
    assert {"202", "400", "409", "413", "422"} <= set(post["responses"])
    assert post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Errors"
