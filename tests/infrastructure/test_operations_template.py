"""template.yaml's operations part: alarms, their notifications, the dashboard, the campaign event bus."""

import json
import re
from pathlib import Path

import pytest

from bulkmail.adapters.events import campaign_detail
from bulkmail.metrics import METRIC_NAMES
from bulkmail_local.runtime import iam
from bulkmail_local.runtime.stack import NOT_PROVISIONED
from bulkmail_local.runtime.template import load_template, merged_function

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES = TEMPLATE["Resources"]
GLOBAL_ENV = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
ASL = json.loads((ROOT / "statemachine" / "campaign.asl.json").read_text())["States"]
NOTIFY = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
SERVICE = [{"Name": "service", "Value": GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"]}]


def alarm(name):
    assert RESOURCES[name]["Type"] == "AWS::CloudWatch::Alarm", name
    return RESOURCES[name]["Properties"]


@pytest.mark.parametrize(
    "name, namespace, metric, dimensions, threshold, operator",
    [
        (
            "SendDeadLetterQueueAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SendDeadLetterQueue", "QueueName"]}}],
            0,
            "GreaterThanThreshold",
        ),
        (
            "FeedbackDeadLetterQueueAlarm",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["FeedbackDeadLetterQueue", "QueueName"]}}],
            0,
            "GreaterThanThreshold",
        ),
        (
            "WorkerErrorsAlarm",
            "AWS/Lambda",
            "Errors",
            [{"Name": "FunctionName", "Value": {"Ref": "SendEmailsFunction"}}],
            0,
            "GreaterThanThreshold",
        ),
        ("SesComplaintRateAlarm", "AWS/SES", "Reputation.ComplaintRate", None, 0.001, "GreaterThanThreshold"),  # 0.1 %
        ("SesBounceRateAlarm", "AWS/SES", "Reputation.BounceRate", None, 0.04, "GreaterThanThreshold"),  # 4 %
        (
            "FailedExecutionsAlarm",
            "AWS/States",
            "ExecutionsFailed",
            [{"Name": "StateMachineArn", "Value": {"Ref": "CampaignStateMachine"}}],
            0,
            "GreaterThanThreshold",
        ),
    ],
)
def test_each_alarm_watches_its_metric_at_its_threshold_and_notifies(
    name, namespace, metric, dimensions, threshold, operator
):
    props = alarm(name)
    assert (props["Namespace"], props["MetricName"], props.get("Dimensions")) == (namespace, metric, dimensions)
    assert (props["Threshold"], props["ComparisonOperator"]) == (threshold, operator)
    assert props["TreatMissingData"] == "notBreaching"  # no data (no mail, no bounce yet) is not an alarm
    assert props["AlarmActions"] == NOTIFY and props["OKActions"] == NOTIFY


def test_the_failure_rate_alarm_divides_the_workers_failed_by_sent_plus_failed():
    props = alarm("CampaignFailureRateAlarm")
    metrics = {m["Id"]: m for m in props["Metrics"]}
    for metric_id, name in (("sent", "EmailsSent"), ("failed", "EmailsFailed")):
        stat = metrics[metric_id]["MetricStat"]
        assert stat["Metric"] == {"Namespace": {"Ref": "MetricsNamespace"}, "MetricName": name, "Dimensions": SERVICE}
        assert stat["Stat"] == "Sum" and metrics[metric_id]["ReturnData"] is False
    (returned,) = [m for m in props["Metrics"] if m.get("ReturnData")]
    expression = returned["Expression"].replace(" ", "")
    assert "100*FILL(failed,0)/(FILL(sent,0)+FILL(failed,0))" in expression
    assert props["Threshold"] == {"Ref": "FailureRateThreshold"}
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["AlarmActions"] == NOTIFY and props["OKActions"] == NOTIFY


def test_alarms_notify_the_given_topic_or_one_the_stack_creates():
    assert TEMPLATE["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert TEMPLATE["Conditions"]["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    topic = RESOURCES["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic" and topic["Condition"] == "CreateAlarmTopic"
    alarms = [k for k, v in RESOURCES.items() if v["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(alarms) == 8
    for name in alarms:
        assert RESOURCES[name]["Properties"]["AlarmActions"] == NOTIFY, name
    assert TEMPLATE["Outputs"]["AlarmTopicArn"]["Value"] == NOTIFY[0]


def test_metrics_share_one_namespace_and_the_template_reads_only_names_the_code_emits():
    assert GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    read = set(re.findall(r'"\$\{MetricsNamespace\}", "([^"]+)"', body))
    read |= {
        m["MetricStat"]["Metric"]["MetricName"]
        for m in alarm("CampaignFailureRateAlarm")["Metrics"]
        if "MetricStat" in m
    }
    assert {"EmailsSent", "EmailsFailed", "SendLatency", "EmailsThrottled"} <= read
    assert read <= METRIC_NAMES, read - METRIC_NAMES
    dimensions = re.findall(r'"\$\{MetricsNamespace\}", "[^"]+", ([^\]{]+?),? *[\]{]', body)
    assert len(dimensions) == len(re.findall(r'"\$\{MetricsNamespace\}"', body))  # every widget metric has them
    assert set(dimensions) == {'"service", "bulkmail"'}


def test_the_dashboard_is_json_once_substituted_and_names_no_region_or_resource():
    props = RESOURCES["OperationsDashboard"]["Properties"]
    assert "DashboardName" not in props
    body = props["DashboardBody"]["Fn::Sub"]
    assert "us-east-1" not in body and '"region": "${AWS::Region}"' in body
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    for name in names:
        logical = name.split(".")[0]
        assert logical in RESOURCES or logical in TEMPLATE["Parameters"] or logical.startswith("AWS::"), name
    dashboard = json.loads(re.sub(r"\$\{[^}]+\}", "x", body.replace("${FailureRateThreshold}", "5")))
    assert len(dashboard["widgets"]) >= 6
    assert len(dashboard["widgets"][0]["properties"]["alarms"]) == 8


def test_only_the_known_publishers_may_put_events_and_only_on_the_campaign_bus():
    bus = RESOURCES["CampaignEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus"
    functions = {
        k: merged_function(TEMPLATE, v["Properties"])
        for k, v in RESOURCES.items()
        if v["Type"] == "AWS::Serverless::Function"
    }
    publishers = {
        k
        for k, p in functions.items()
        for policy in p.get("Policies", [])
        if isinstance(policy, dict) and "EventBridgePutEventsPolicy" in policy
    }
    assert publishers == {
        "ApiFunction",
        "SendEmailsFunction",
        "ScheduleFailedFunction",  # CampaignFailed of a scheduled start
        "FeedbackFunction",  # contact-level events (ContactEvents): opens, clicks, bounces
        "UnsubscribeFunction",  # ContactUnsubscribed (ContactEvents)
    }
    for name in publishers:
        assert {
            "EventBridgePutEventsPolicy": {"EventBusName": {"Fn::GetAtt": ["CampaignEventBus", "Name"]}}
        } in functions[name]["Policies"]
    assert GLOBAL_ENV["EVENT_BUS_NAME"] == {"Fn::GetAtt": ["CampaignEventBus", "Name"]}
    machine = RESOURCES["CampaignStateMachine"]["Properties"]
    statements = [s for p in machine["Policies"] if "Statement" in p for s in p["Statement"]]
    assert {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": {"Fn::GetAtt": ["CampaignEventBus", "Arn"]},
    } in statements
    assert machine["DefinitionSubstitutions"]["CampaignEventBusArn"] == {"Fn::GetAtt": ["CampaignEventBus", "Arn"]}
    text = (ROOT / "template.yaml").read_text()
    assert "PutMetricData" not in text  # EMF goes through the logs


@pytest.mark.parametrize(
    "after, publish, then",
    [
        ("PersistCampaign", "PublishCampaignStarted", "AdvanceCampaign"),
        ("MarkCompleted", "PublishCampaignCompleted", "CampaignCompleted"),
        ("MarkFailed", "PublishCampaignFailed", "CampaignFailed"),
    ],
)
def test_the_workflow_publishes_after_its_state_changes_and_a_refusal_changes_nothing(after, publish, then):
    if after != "PersistCampaign":  # the final counters are read (by projection) between the two
        read = ASL[after]["Next"]
        assert ASL[read]["Resource"].endswith("dynamodb:getItem") and ASL[read]["ResultPath"] == "$.final"
        assert ASL[read]["Catch"][0]["Next"] == then
        after = read
    assert ASL[after]["Next"] == publish
    state = ASL[publish]
    assert state["Resource"] == "arn:${Partition}:states:::events:putEvents" and state["Next"] == then
    (entry,) = state["Parameters"]["Entries"]
    assert entry["EventBusName"] == "${CampaignEventBusArn}" and entry["Source"] == "bulkmail"
    assert entry["DetailType"] == publish.removeprefix("Publish")
    assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.event_error", "Next": then}]
    assert state["ResultPath"] is None  # the workflow's state is left as it was
    # One detail shape for the events the workflow publishes and those the code publishes.
    keys = {k.removesuffix(".$") for k in entry["Detail"]} - {"execution_arn", "error", "cause"}
    assert keys == set(campaign_detail({"campaign_id": "c", "status": "queued"}, "now"))
    assert {k.removesuffix(".$") for k in entry["Detail"]["counts"]} == {"total", "sent", "failed", "skipped"}


def test_every_resource_type_is_provisioned_by_the_embedded_runtime_or_skipped_on_purpose():
    source = (ROOT / "local" / "bulkmail_local" / "runtime" / "stack.py").read_text()
    provisioned = set(re.findall(r'_resources\("([A-Za-z:]+)"\)', source)) | set(iam.POLICY_TYPES)
    for name, resource in RESOURCES.items():
        assert resource["Type"] in provisioned | set(NOT_PROVISIONED), f"{name}: {resource['Type']} is neither"
