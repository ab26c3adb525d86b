"""template.yaml and the ASL, held to the project's template hygiene rules."""

import json
import re
from pathlib import Path

import pytest

from bulkmail import public_api
from bulkmail.models import BatchMessage
from bulkmail.validation import validate_campaign
from bulkmail_local.runtime.template import load_template, merged_function

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
FUNCTIONS = {
    k: merged_function(TEMPLATE, v["Properties"])
    for k, v in RESOURCES.items()
    if v["Type"] == "AWS::Serverless::Function"
}
ASL_PATH = ROOT / "statemachine" / "campaign.asl.json"


def walk(value):
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def test_no_wildcard_resource_and_no_fixed_physical_names():
    for node in walk(RESOURCES):
        assert node.get("Resource") != "*"
    for name, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        for key in ("TableName", "QueueName", "FunctionName", "Name", "DashboardName", "AlarmName", "TopicName"):
            value = props.get(key)
            # A name the resource type requires (an event bus's) is derived from the stack's, so stacks never collide.
            derived = isinstance(value, dict) and "${AWS::StackName}" in str(value.get("Fn::Sub", ""))
            assert value is None or derived, f"{name} fixes its physical {key}"


def test_arns_built_in_the_template_use_the_partition():
    text = (ROOT / "template.yaml").read_text()
    assert "arn:aws:" not in text
    assert "${AWS::Partition}" in text


def test_every_queue_has_a_dead_letter_queue_and_visibility_covers_six_worker_timeouts():
    queues = {k: v["Properties"] for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}
    dlq_targets = {
        p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0] for p in queues.values() if "RedrivePolicy" in p
    }
    for props in FUNCTIONS.values():  # dead-letter queues of event sources (EventBridge rules)
        for event in props.get("Events", {}).values():
            arn = event["Properties"].get("DeadLetterConfig", {}).get("Arn")
            if arn:
                dlq_targets.add(arn["Fn::GetAtt"][0])
    for name, props in queues.items():
        assert name in dlq_targets or "RedrivePolicy" in props, f"{name} has no DLQ"
        assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId"), f"{name} is not encrypted"
    for _fn, props in FUNCTIONS.items():
        for event in props.get("Events", {}).values():
            if event["Type"] == "SQS":
                queue = queues[event["Properties"]["Queue"]["Fn::GetAtt"][0]]
                assert queue["VisibilityTimeout"] >= 6 * props["Timeout"]
                assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_each_function_has_its_folder_handler_and_sample_event():
    for logical_id, props in FUNCTIONS.items():
        folder = ROOT / props["CodeUri"]
        assert (folder / "app.py").exists(), logical_id
        assert props["Handler"] == "app.handler"
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()
        assert folder.name == snake, f"{logical_id} should live in functions/{snake}/"
        assert (ROOT / "events" / f"{snake}.json").exists(), f"no sample event for {logical_id}"


def test_sample_events_are_valid():
    validate_campaign(json.loads((ROOT / "events" / "validate_campaign.json").read_text()))
    validate_campaign(json.loads((ROOT / "events" / "campaign.json").read_text()))
    persist = json.loads((ROOT / "events" / "persist_campaign.json").read_text())
    validate_campaign({k: v for k, v in persist["campaign"].items() if k != "created_at"})  # as validated
    for record in json.loads((ROOT / "events" / "send_emails.json").read_text())["Records"]:
        BatchMessage.from_body(json.loads(record["body"]))
    contacts = json.loads((ROOT / "events" / "contacts.json").read_text())
    assert len(contacts["contacts"]) >= 200


def test_asl_substitutions_are_all_defined_and_no_resource_is_literal():
    asl_text = ASL_PATH.read_text()
    used = set(re.findall(r"\$\{(\w+)\}", asl_text))
    machine = next(v["Properties"] for v in RESOURCES.values() if v["Type"] == "AWS::Serverless::StateMachine")
    assert used == set(machine["DefinitionSubstitutions"])
    assert "arn:aws:lambda" not in asl_text and "bulkmail-" not in asl_text


def test_every_task_retries_service_errors_and_is_caught():
    states = json.loads(ASL_PATH.read_text())["States"]
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        if ":lambda:" in state["Resource"]:
            assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried, name
        else:
            assert "DynamoDB.ThrottlingException" in retried or "States.ALL" in retried, name
        assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), name
        assert all(r.get("BackoffRate", 1) >= 2 for r in state["Retry"]), name


@pytest.mark.parametrize(
    "state",
    [
        "ValidateCampaign",
        "PersistCampaign",
        "AdvanceCampaign",
        "WaitForProgress",
        "ContinueAsNewExecution",
        "MarkCompleted",
        "MarkFailed",
    ],
)
def test_states_are_named_for_what_they_do(state):
    assert state in json.loads(ASL_PATH.read_text())["States"]


def test_unsubscribe_links_point_at_the_public_api_whose_routes_are_the_unsubscribe_function():
    api = RESOURCES["PublicApi"]["Properties"]
    assert "Auth" not in api, "the links in the mail must work without credentials"
    base_url = FUNCTIONS["SendEmailsFunction"]["Environment"]["Variables"]["UNSUBSCRIBE_BASE_URL"]["Fn::Sub"]
    assert base_url == "https://${PublicApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + api["StageName"]
    routes = {
        (e["Properties"]["Method"], e["Properties"]["Path"])
        for e in FUNCTIONS["UnsubscribeFunction"]["Events"].values()
    }
    # exactly the public resolver's routes (unsubscribe, signup, preferences): none unreachable, none missing
    app = public_api.app
    served = {(r.method.lower(), r.openapi_path) for r in [*app._static_routes, *app._dynamic_routes]}
    assert routes == served
    assert {("get", "/unsubscribe/{token}"), ("post", "/unsubscribe/{token}"), ("post", "/subscribe")} <= routes
    assert {("get", "/archive/{campaign_id}"), ("get", "/archive/lists/{list_name}/feed")} <= routes  # issue 16
    # every signup mails someone: the stage throttles POST /subscribe below the rest of the public API
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in api["MethodSettings"]}
    signup, everything = settings[("/~1subscribe", "POST")], settings[("/*", "*")]
    assert signup["ThrottlingRateLimit"] < everything["ThrottlingRateLimit"]
    assert signup["ThrottlingBurstLimit"] <= everything["ThrottlingBurstLimit"]
    for fn in ("SendEmailsFunction", "UnsubscribeFunction"):
        variables = FUNCTIONS[fn]["Environment"]["Variables"]
        assert variables["UNSUBSCRIBE_KEY_SECRET"] == {"Ref": "UnsubscribeSigningKey"}
        assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": {"Ref": "UnsubscribeSigningKey"}}} in FUNCTIONS[
            fn
        ]["Policies"]


def test_bounces_and_complaints_reach_the_feedback_function():
    destination = RESOURCES["BounceAndComplaintEvents"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}
    assert sorted(destination["EventDestination"]["MatchingEventTypes"]) == ["bounce", "complaint"]
    assert "EventBridgeDestination" in destination["EventDestination"]
    (rule,) = FUNCTIONS["FeedbackFunction"]["Events"].values()
    pattern = rule["Properties"]["Pattern"]
    assert rule["Type"] == "EventBridgeRule" and pattern["source"] == ["aws.ses"]
    assert {"Email Bounced", "Email Complaint Received"} <= set(pattern["detail-type"])
    assert pattern["detail"]["mail"]["tags"]["ses:configuration-set"] == [
        {"Ref": "EmailConfigurationSet"},
        {"Ref": "TrackedConfigurationSet"},
    ]
    worker_env = FUNCTIONS["SendEmailsFunction"]["Environment"]["Variables"]
    assert worker_env["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}
    assert worker_env["SES_TRACKED_CONFIGURATION_SET"] == {"Ref": "TrackedConfigurationSet"}


def test_opens_clicks_and_deliveries_of_tracked_mail_reach_the_feedback_function():
    """Every event type the tracked configuration set publishes has its detail-type in the rule."""
    destination = RESOURCES["TrackedEvents"]["Properties"]
    assert destination["ConfigurationSetName"] == {"Ref": "TrackedConfigurationSet"}
    types = set(destination["EventDestination"]["MatchingEventTypes"])
    assert {"open", "click", "delivery", "deliveryDelay", "reject", "renderingFailure"} <= types
    detail_types = {
        "bounce": "Email Bounced",
        "complaint": "Email Complaint Received",
        "delivery": "Email Delivered",
        "deliveryDelay": "Email Delivery Delayed",
        "reject": "Email Rejected",
        "renderingFailure": "Email Rendering Failed",
        "open": "Email Opened",
        "click": "Email Clicked",
    }
    (rule,) = FUNCTIONS["FeedbackFunction"]["Events"].values()
    assert {detail_types[t] for t in types} == set(rule["Properties"]["Pattern"]["detail-type"])


def test_no_state_reads_the_whole_campaign_item():
    """A campaign item holds its bodies (up to 150,000 characters each): returned whole into a state it
    could pass the 256 KiB a state may carry. States read counters by projection, or nothing."""
    for name, state in json.loads(ASL_PATH.read_text())["States"].items():
        if ":::dynamodb:" not in state.get("Resource", ""):
            continue
        params = state["Parameters"]
        assert params.get("ReturnValues", "NONE") in ("NONE", "UPDATED_OLD", "UPDATED_NEW"), name
        if state["Resource"].endswith("dynamodb:getItem"):
            assert "body" not in params["ProjectionExpression"], name


def test_every_arn_follows_the_partition():
    """GovCloud and China are partitions of their own: no ARN may say arn:aws: literally."""
    machine = RESOURCES["CampaignStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}
    definition = ASL_PATH.read_text().replace("${Partition}", "aws-cn")
    assert "arn:aws:" not in definition and definition.count("arn:aws-cn:states:::") >= 4
    template_text = (ROOT / "template.yaml").read_text()
    assert re.findall(r"arn:(?!\$\{AWS::Partition\}|\[a-z-\]\+)", template_text) == []


def test_no_workflow_step_fails_a_campaign_for_a_retryable_dynamodb_fault():
    """Issue 12, finding 5: the Lambda steps raise DatabaseBusy for a fault that wrote nothing, and the
    ASL's own DynamoDB tasks meet TransactionConflict and 500s; each state's Retry covers them."""
    import json as _json
    from pathlib import Path as _Path

    states = _json.loads((_Path(__file__).resolve().parents[2] / "statemachine" / "campaign.asl.json").read_text())[
        "States"
    ]
    for name, state in states.items():
        resource = state.get("Resource", "")
        retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
        if resource.endswith("lambda:invoke") and name != "ValidateCampaign":
            assert "DatabaseBusy" in retried, name
        if ":dynamodb:" in resource:
            assert {
                "DynamoDB.TransactionConflictException",
                "DynamoDB.InternalServerError",
                "DynamoDB.ProvisionedThroughputExceededException",
                "DynamoDB.ThrottlingException",
            } <= retried, name
