"""What a first real deployment needs that the embedded runtime cannot show: held on the template
and the layer's requirements."""

import re
from importlib.metadata import version
from pathlib import Path

from bulkmail_local.runtime.template import load_template

ROOT = Path(__file__).resolve().parents[2]
RESOURCES = load_template(ROOT / "template.yaml")["Resources"]


def pins(text: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*"?([A-Za-z0-9_.-]+)==([0-9][^\s",#]*)', text, re.MULTILINE))


def test_the_layer_pins_boto3_and_botocore_to_the_versions_the_suite_runs_with():
    """The Lambda runtime's bundled boto3 may not know ReturnValuesOnConditionCheckFailure or
    ActionAfterCompletion: the layer ships the tested ones."""
    layer = pins((ROOT / "lib" / "requirements.txt").read_text())
    project = pins((ROOT / "pyproject.toml").read_text())
    for package in ("boto3", "botocore"):
        assert layer.get(package) == project.get(package) == version(package), package


def test_the_unsubscribe_signing_key_outlives_the_stack():
    key = RESOURCES["UnsubscribeSigningKey"]
    assert key.get("DeletionPolicy") == key.get("UpdateReplacePolicy") == "Retain"


def test_feedback_function_failures_have_an_on_failure_destination_watched_by_an_alarm():
    config = RESOURCES["FeedbackFunction"]["Properties"]["EventInvokeConfig"]
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination["Type"] == "SQS"
    queue = destination["Destination"]["Fn::GetAtt"][0]
    alarmed = {
        r["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/SQS"
    }
    assert queue in alarmed


def test_failed_scheduled_starts_have_a_dead_letter_queue_the_scheduler_role_may_write_and_a_consumer():
    statements = RESOURCES["CampaignSchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {
        "Effect": "Allow",
        "Action": "sqs:SendMessage",
        "Resource": {"Fn::GetAtt": ["ScheduleFailureQueue", "Arn"]},
    } in statements
    api_env = RESOURCES["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api_env["SCHEDULE_DEAD_LETTER_ARN"] == {"Fn::GetAtt": ["ScheduleFailureQueue", "Arn"]}
    events = RESOURCES["ScheduleFailedFunction"]["Properties"]["Events"].values()
    assert [e["Properties"]["Queue"] for e in events] == [{"Fn::GetAtt": ["ScheduleFailureQueue", "Arn"]}]
