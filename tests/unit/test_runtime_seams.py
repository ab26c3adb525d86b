"""Guards on every place the embedded runtime reaches into moto or Powertools internals.

Each test fails loudly, naming the seam, when an upgrade moves what the runtime patches or reads
(docs/architecture.md, "Runtime seams"; docs/dependencies.md says how to upgrade). Where we carry
a replacement of upstream code, a test also shows it still answers as upstream does, and another
that the reason for carrying it still holds: when upstream fixes it, the fork goes.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import os
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from aws_lambda_powertools import Metrics
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.models import DynamoDBBackend, Table, dynamodb_backends
from moto.server import ThreadedMotoServer
from moto.ses.models import ses_backends

from bulkmail_local.runtime import limits, moto_fixes
from bulkmail_local.runtime.metrics import EmfSink
from bulkmail_local.runtime.seams import EMF_MODULES, SQS_TIME_FUNCTIONS, STATE_QUOTA_USERS, private_metrics

# Its module fixture is one stack (or one server) for all its tests: they run on one worker.
pytestmark = pytest.mark.xdist_group("runtime_seams")

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """One emulated account for the module (starting moto per test costs seconds on a busy machine)."""
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
    with mock.patch.dict(os.environ, {**fake, "AWS_DEFAULT_REGION": REGION}), mock_aws():
        yield


@pytest.fixture(scope="module")
def dynamodb(aws: None) -> Any:
    return boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def table(dynamodb: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh table holding one item, {"pk": "held", "v": 1}."""
    name = f"t{abs(hash(request.node.nodeid))}"
    _create(dynamodb, name)
    yield name
    dynamodb.delete_table(TableName=name)


def names(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


# --- Lambda: moto's one seam for running a handler without Docker --------------------------------


def test_moto_invokes_functions_through_invoke_lambda_with_the_event() -> None:
    assert names(LambdaFunction._invoke_lambda) == ["self", "event"]
    assert "self._invoke_lambda(event=" in inspect.getsource(LambdaFunction.invoke), (
        "moto's LambdaFunction.invoke no longer calls _invoke_lambda(event=...): "
        "runtime.lambdas.invoke_from_moto is not called"
    )


# --- every emulated request passes BotocoreStubber.__call__ (locking, limits, faults, metering) --


def test_every_request_passes_the_stubber_at_before_send(aws: None) -> None:
    seen: list[str] = []
    original = BotocoreStubber.__call__

    def spy(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        seen.append(event_name)
        return original(self, event_name, request, **kwargs)

    assert names(original) == ["self", "event_name", "request", "kwargs"]
    with mock.patch.object(BotocoreStubber, "__call__", spy):
        boto3.client("dynamodb", region_name=REGION).list_tables()
    assert "before-send.dynamodb.ListTables" in seen


def test_an_answer_built_on_mock_raw_response_reads_back() -> None:
    from botocore.awsrequest import AWSResponse

    response = AWSResponse("https://example", 400, {}, MockRawResponse(b'{"message": "no"}'))
    assert json.loads(response.content) == {"message": "no"}


# --- DynamoDB TransactWriteItems: our replacement (moto_fixes) -----------------------------------


def _create(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName=name, Item={"pk": {"S": "held"}, "v": {"N": "1"}})


# Transactions on a table named "t", renamed for each run (see _on).
def _put(pk: str, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "v": {"N": "0"}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def _update(pk: str, condition: str | None = None, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {
        "TableName": "t",
        "Key": {"pk": {"S": pk}},
        "UpdateExpression": "ADD v :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
        **extra,
    }
    if condition:
        op["ConditionExpression"] = condition
        op["ExpressionAttributeValues"][":zero"] = {"N": "0"}
    return {"Update": op}


def _on(table: str, actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{kind: {**op, "TableName": table} for kind, op in action.items()} for action in actions]


TRANSACTIONS = {
    "all conditions hold": [
        _put("new", "attribute_not_exists(pk)"),
        _update("held", "v > :zero"),
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "gone"}}}},
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": {"pk": {"S": "nope"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
    ],
    "one fails, with the old item": [
        _put("new"),
        _update("held", "v = :zero", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    ],
    "one fails, no item returned": [_put("held", "attribute_not_exists(pk)"), _update("other")],
    "the same item twice": [_put("twice"), _update("twice")],
    "over 100 actions": [_put(f"p{i}") for i in range(101)],
}


_UPSTREAM_TRANSACT = DynamoDBBackend.transact_write_items


def _outcome(client: Any, name: str, transaction: list[dict[str, Any]], fork: bool) -> tuple[Any, list[Any]]:
    _create(client, name)
    implementation = moto_fixes.transact_write_items if fork else _UPSTREAM_TRANSACT
    with mock.patch.object(DynamoDBBackend, "transact_write_items", implementation):
        try:
            client.transact_write_items(TransactItems=_on(name, transaction))
            answer: Any = "ok"
        except ClientError as error:
            answer = (error.response["Error"], error.response.get("CancellationReasons"))
    items = sorted(client.scan(TableName=name)["Items"], key=lambda item: item["pk"]["S"])
    client.delete_table(TableName=name)
    return answer, items


@pytest.mark.parametrize("case", TRANSACTIONS)
def test_our_transact_write_items_answers_as_moto_does(dynamodb: Any, case: str) -> None:
    upstream = _outcome(dynamodb, "upstream", TRANSACTIONS[case], fork=False)
    ours = _outcome(dynamodb, "ours", TRANSACTIONS[case], fork=True)
    assert ours == upstream, f"moto_fixes.transact_write_items differs from moto's on: {case}"


def test_moto_still_copies_whole_tables_per_transaction(dynamodb: Any, table: str) -> None:
    """The reason for the replacement: if this fails, moto stopped copying tables: delete the fork."""
    copied: list[type] = []
    deepcopy = copy.deepcopy

    def recording(value: Any, *args: Any) -> Any:
        copied.append(type(value))
        return deepcopy(value, *args)

    with (
        mock.patch.object(DynamoDBBackend, "transact_write_items", _UPSTREAM_TRANSACT),
        mock.patch("moto.dynamodb.models.copy.deepcopy", recording),
    ):
        dynamodb.transact_write_items(TransactItems=_on(table, [_update("held")]))
    assert Table in copied, "moto's TransactWriteItems no longer deep-copies tables: moto_fixes' fork may go"


def test_the_backend_reads_the_fork_and_metering_rely_on(table: str) -> None:
    backend = dynamodb_backends[ACCOUNT][REGION]
    item = backend.get_item(table, {"pk": {"S": "held"}})
    assert item.to_json()["Attributes"] == {"pk": {"S": "held"}, "v": {"N": "1"}}
    assert backend.get_item(table, {"pk": {"S": "absent"}}) is None
    assert names(DynamoDBBackend.update_item)[:3] == ["self", "table_name", "key"]
    assert {"update_expression", "expression_attribute_names", "expression_attribute_values"} <= set(
        names(DynamoDBBackend.update_item)
    )


# --- DynamoDB responses serialised with json.dumps (moto_fixes.serialize_result) -----------------


def _responses(client: Any, serialize: bool) -> list[dict[str, Any]]:
    table = "serialised" if serialize else "upstream"
    _create(client, table)
    implementation = moto_fixes.serialize_result if serialize else moto_fixes._serialize_result
    item = {
        "pk": {"S": "typed"},
        "n": {"N": "1.50"},
        "b": {"B": b"\x00\xff"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "l": {"L": [{"S": "a"}, {"N": "2"}]},
        "m": {"M": {"k": {"S": "ü ✓"}}},
        "ss": {"SS": ["x", "y"]},
        "ns": {"NS": ["1", "2"]},
    }
    key = {"pk": {"S": "typed"}}
    with mock.patch.object(BaseJSONSerializer, "_serialize_result", implementation):
        answers = [
            client.put_item(TableName=table, Item=item, ReturnValues="NONE"),
            client.get_item(TableName=table, Key=key),
            client.get_item(TableName=table, Key={"pk": {"S": "absent"}}),
            client.batch_get_item(RequestItems={table: {"Keys": [key, {"pk": {"S": "held"}}]}}),
            client.query(
                TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": key["pk"]}
            ),
            client.update_item(**_on(table, [_update("held")])[0]["Update"], ReturnValues="ALL_NEW"),
            client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}]),
            client.delete_item(TableName=table, Key=key, ReturnValues="ALL_OLD"),
        ]
    client.delete_table(TableName=table)
    for answer in answers:
        answer.pop("ResponseMetadata")
    return json.loads(json.dumps(answers, default=repr).replace(table, "T"))


def test_json_serialised_item_responses_equal_motos(dynamodb: Any) -> None:
    assert names(BaseJSONSerializer._serialize_result) == ["self", "resp", "result"]
    assert _responses(dynamodb, serialize=True) == _responses(dynamodb, serialize=False)


# --- Step Functions' payload quota: every moto module that checks it -----------------------------


def test_every_user_of_motos_state_quota_is_patched() -> None:
    import moto.stepfunctions.parser as parser

    root = Path(parser.__file__).parent
    users = {
        "moto.stepfunctions.parser." + ".".join(path.relative_to(root).with_suffix("").parts)
        for path in root.rglob("*.py")
        if "is_within_size_quota" in path.read_text() and path.name != "quotas.py"
    }
    assert users == set(STATE_QUOTA_USERS), "moto checks the state payload quota in other modules now"
    from moto.stepfunctions.parser import quotas

    assert names(quotas.is_within_size_quota) == names(limits.within_state_quota) == ["value"]


# --- SES: the outbox reads what moto kept --------------------------------------------------------


def test_moto_keeps_raw_sends_where_the_outbox_reads_them(aws: None) -> None:
    boto3.client("ses", region_name=REGION).verify_domain_identity(Domain="example.com")
    raw = "From: a@example.com\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody"
    boto3.client("sesv2", region_name=REGION).send_email(
        FromEmailAddress="a@example.com",
        Destination={"ToAddresses": ["b@example.org"]},
        Content={"Raw": {"Data": raw.encode()}},
    )
    sent = ses_backends[ACCOUNT][REGION].sent_messages[-1]
    assert sent.raw_data == raw and sent.id


# --- the threaded server the loopback guard wraps ------------------------------------------------


def test_threaded_server_internals_the_loopback_server_overrides() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

    assert callable(DomainDispatcherApplication) and callable(create_backend_app) and MotoRequestHandler
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    assert {"_ip_address", "_port", "_server_ready_event"} <= vars(server).keys()
    assert "self._server_entry" in inspect.getsource(ThreadedMotoServer.start)


# --- Powertools metrics: printed by module-level print(), sets shared per process ----------------


def _handler_module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.metrics = Metrics(namespace="Guard", service="guard")  # type: ignore[attr-defined]
    return module


def test_powertools_prints_emf_where_the_runtime_catches_it() -> None:
    sink = EmfSink()
    module = _handler_module("handler_a")
    private_metrics(module)
    with ExitStack() as patches:
        for name in EMF_MODULES:
            patches.enter_context(mock.patch.object(importlib.import_module(name), "print", sink, create=True))
        module.metrics.add_metric(name="Sent", unit="Count", value=3)
        module.metrics.flush_metrics()
    assert sink.totals("Guard") == {"Sent": 3.0}, "Powertools no longer emits EMF through print() in EMF_MODULES"


def test_each_handler_modules_metric_set_is_its_own() -> None:
    a, b = _handler_module("handler_a"), _handler_module("handler_b")
    b.metrics.add_metric(name="Before", unit="Count", value=1)
    shared = "Before" in a.metrics.metric_set
    a.metrics.clear_metrics()  # the process-wide set: leave nothing behind for other tests
    assert shared, "Powertools no longer shares metric sets between Metrics objects: private_metrics may go"
    private_metrics(a)
    private_metrics(b)
    a.metrics.add_metric(name="Sent", unit="Count", value=1)
    assert "Sent" in a.metrics.provider.metric_set and "Sent" not in b.metrics.metric_set


# --- durable local state (runtime/persistence.py): what it reads from moto and puts back -------


def test_every_request_passes_base_response_call_action(aws: None) -> None:
    from moto.core.responses import BaseResponse

    calls: list[str] = []
    original = BaseResponse.call_action

    def spy(self: BaseResponse) -> Any:
        calls.append(type(self).__name__)
        return original(self)

    assert names(original) == ["self"]
    with mock.patch.object(BaseResponse, "call_action", spy):
        boto3.client("sqs", region_name=REGION).list_queues()
    assert calls, "moto no longer answers through BaseResponse.call_action: persistence mirrors nothing"


def test_sqs_messages_are_where_persistence_reads_and_puts_them(aws: None) -> None:
    from moto.sqs.models import Message, sqs_backends

    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="seams")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    queue = sqs_backends[ACCOUNT][REGION].queues["seams"]
    (held,) = queue._messages
    assert (held.body, held.approximate_receive_count) == ("hello", 0) and held.id
    assert names(Message.__init__)[1:4] == ["message_id", "body", "system_attributes"]
    kept = (
        "message_attributes",
        "sent_timestamp",
        "approximate_first_receive_timestamp",
        "approximate_receive_count",
        "group_id",
        "deduplication_id",
        "sequence_number",
    )
    assert all(hasattr(held, name) for name in kept), "a message attribute persistence keeps has moved"
    again = Message("put-back", "again", {})
    again.sent_timestamp, again.approximate_receive_count = held.sent_timestamp, 0
    queue.add_message(again)
    assert "again" in [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]


def test_secrets_schedules_and_executions_are_where_persistence_reads_them(aws: None) -> None:
    from moto.scheduler.models import scheduler_backends
    from moto.secretsmanager.models import SecretsManagerBackend, secretsmanager_backends
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    boto3.client("secretsmanager", region_name=REGION).create_secret(Name="seams", SecretString="s1")
    secret = secretsmanager_backends[ACCOUNT][REGION].secrets["seams"]
    assert secret.versions[secret.default_version_id]["secret_string"] == "s1" and not secret.is_deleted()
    assert {"secret_id", "secret_string", "secret_binary", "client_request_token", "version_stages"} <= set(
        names(SecretsManagerBackend.put_secret_value)
    )
    boto3.client("scheduler", region_name=REGION).create_schedule(
        Name="seams",
        ScheduleExpression="at(2030-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:sqs:us-east-1:123456789012:q", "RoleArn": "arn:aws:iam::123456789012:role/r"},
    )
    scheduler = scheduler_backends[ACCOUNT][REGION]
    schedule = scheduler.schedule_groups["default"].schedules["seams"]
    stored = schedule.to_dict()
    assert {
        "Description",
        "EndDate",
        "FlexibleTimeWindow",
        "GroupName",
        "KmsKeyArn",
        "Name",
        "ScheduleExpression",
        "ScheduleExpressionTimezone",
        "StartDate",
        "State",
        "Target",
        "ActionAfterCompletion",
    } <= stored.keys()
    assert callable(StepFunctionsParserBackend._get_executions)  # the backend when execute_state_machine is on


# --- local IAM (runtime/iam.py): moto's request parsers and policy evaluator ---------------------


def test_moto_parses_a_request_into_the_parameters_iam_checks(aws: None) -> None:
    from bulkmail_local.runtime import iam

    seen: list[Any] = []
    original = BotocoreStubber.__call__

    def spy(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        if event_name == "before-send.sqs.CreateQueue":
            seen.append(iam.request_parameters("sqs", request))
        return original(self, event_name, request, **kwargs)

    with mock.patch.object(BotocoreStubber, "__call__", spy):
        boto3.client("sqs", region_name=REGION).create_queue(QueueName="parsed", Attributes={"DelaySeconds": "1"})
    assert seen and seen[0]["QueueName"] == "parsed", "moto's request parsing moved: runtime.iam reads no parameters"


def test_moto_evaluates_policies_and_still_lacks_arn_equals() -> None:
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicy, PermissionResult

    # moto compares actions case-sensitively (IAM does not): runtime.iam lowercases both sides.
    allow = {"Effect": "Allow", "Action": "sqs:sendmessage", "Resource": "arn:aws:sqs:us-east-1:123456789012:q"}
    deny = {**allow, "Effect": "Deny"}
    policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": [allow]}))
    assert policy.is_action_permitted("sqs:sendmessage", allow["Resource"], None, {}) == PermissionResult.PERMITTED
    both = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": [allow, deny]}))
    assert both.is_action_permitted("sqs:sendmessage", allow["Resource"], None, {}) == PermissionResult.DENIED
    assert "StringEquals" in policy_conditions.CONDITION_OPERATIONS
    assert "ArnEquals" not in policy_conditions.CONDITION_OPERATIONS, (
        "moto evaluates ArnEquals now: seam 5 in runtime.seams.install may go"
    )


# --- Step Functions: a definition validated once per text (seams.install, 8) ----------------------


def test_moto_validates_a_definition_by_parsing_it_at_create_state_machine() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from bulkmail_local.runtime import seams

    assert names(StepFunctionsParserBackend._validate_definition) == ["definition"]
    assert "_validate_definition(definition=definition)" in inspect.getsource(
        StepFunctionsParserBackend.create_state_machine
    ), "moto no longer validates through _validate_definition(definition=...): seam 8 patches nothing"
    # Once per valid text; an invalid one is refused every time, as by moto.
    good = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    seams._validate_definition(good)
    seams._validate_definition(good)
    assert seams._validate_definition.cache_info().hits >= 1
    from moto.stepfunctions.parser.api import InvalidDefinition

    for _ in range(2):
        with pytest.raises(InvalidDefinition):
            seams._validate_definition('{"StartAt": "Nowhere", "States": {}}')


# --- SQS: time through moto.sqs.models' unix_time / unix_time_millis (seams.install, 9) -----------


def test_moto_sqs_reads_the_time_through_the_names_the_clock_replaces(aws: None) -> None:
    import moto.sqs.models as sqs_models

    from bulkmail_local.runtime import seams
    from bulkmail_local.runtime.clock import RuntimeClock

    source = inspect.getsource(sqs_models)
    for name in SQS_TIME_FUNCTIONS:
        assert callable(getattr(sqs_models, name)), f"moto.sqs.models has no {name}: seam 9 patches nothing"
    assert "time.time(" not in source and "datetime.now(" not in source and "utcnow(" not in source, (
        "moto's SQS reads the time another way now: the runtime's clock no longer moves SQS's"
    )
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="clocked")["QueueUrl"]
    clock = RuntimeClock()
    with ExitStack() as stack:
        for name in SQS_TIME_FUNCTIONS:
            stack.enter_context(mock.patch.object(sqs_models, name, seams._clock_function(clock, name)))
        sqs.send_message(QueueUrl=url, MessageBody="m", DelaySeconds=600)
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
        clock.advance(601)  # the delay is over on the clock: no sleep
        received = sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
        clock.advance(31)
        assert sqs.receive_message(QueueUrl=url)["Messages"][0]["MessageId"] == received[0]["MessageId"]
