"""EmbeddedRuntime: template.yaml provisioned on moto, in one process, with no AWS account.

    with EmbeddedRuntime(outbox=Path("outbox")) as rt:
        rt.start_campaign({...})         # StartExecution on the real ASL
        rt.wait_for_execution(arn)       # workers drain the queue meanwhile

Parameters are the template's, with overrides for local speed (PollSeconds=1 by default).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import secrets
import string
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO
from unittest import mock

import boto3
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from bulkmail.adapters.wiring import new_container
from bulkmail_local.runtime import iam, seams
from bulkmail_local.runtime.clock import RuntimeClock
from bulkmail_local.runtime.event_source import MappingConfig, SqsEventSource
from bulkmail_local.runtime.lambdas import LocalFunction, load_handler, redirect_function_logs
from bulkmail_local.runtime.metering import Meter
from bulkmail_local.runtime.metrics import EmfSink
from bulkmail_local.runtime.outbox import Outbox
from bulkmail_local.runtime.scheduler import OneTimeScheduler
from bulkmail_local.runtime.template import Resolver, load_template, merged_function, parameter_values

if TYPE_CHECKING:
    from bulkmail_local.runtime.persistence import DurableState, Resumed


class FaultInjector(Protocol):
    """Consulted on every emulated AWS request (runtime.faults): an answer of its own, or None."""

    def before(self, request: Any) -> AWSResponse | None: ...

    def after(self, request: Any, response: Any) -> None: ...


PROJECT_ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "bulkmail"
# Local speed: poll every second, and the emulated SES has no send quota, so pace only campaigns
# that ask for a rate of their own.
LOCAL_PARAMETERS = {"PollSeconds": 1, "DefaultMaxSendRate": 10000}
# Where the public API (unsubscribe links) is served locally; on AWS it is the PublicApi's URL.
LOCAL_PUBLIC_URL = "http://127.0.0.1:8000"
# The runtime's own process environment: fake credentials, no X-Ray. Metrics stay on: their EMF
# documents go to the function log and EmfSink (runtime/metrics.py), never to stdout. (Disabled, as
# they once were, Powertools never cleared its metric set and printed it to stdout at 100 values.)
LOCAL_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "false",
    "MOTO_ALLOW_NONEXISTENT_REGION": "true",
}
# Resource types the runtime does not create, and why (tests/infrastructure checks that every type
# in the template is either provisioned or here).
NOT_PROVISIONED = {
    "AWS::Serverless::LayerVersion": "the layer's package is installed into the virtualenv",
    "AWS::SES::ConfigurationSetEventDestination": "tests hand FeedbackFunction the events SES would publish",
    "AWS::CloudWatch::Alarm": "nothing evaluates alarms locally; metrics are summed in runtime.metrics",
    "AWS::CloudWatch::Dashboard": "nothing to show it",
    "AWS::SNS::Topic": "only alarms publish to it",
    "AWS::Logs::LogGroup": "function logs go to the log file (outbox/lambda.log), kept as long as the file",
}


@functools.cache
def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)  # type: ignore[call-overload]


class EmbeddedRuntime:
    def __init__(
        self,
        *,
        template: Path | None = None,
        outbox: Path | None = None,
        parameters: dict[str, Any] | None = None,
        verified_identities: tuple[str, ...] = ("example.com",),
        worker_concurrency: int | None = None,
        log_file: Path | None = None,
        environment: dict[str, str] | None = None,
        function_timeouts: dict[str, int] | None = None,
        visibility_timeout: int | None = None,
        public_url: str = LOCAL_PUBLIC_URL,
        state: DurableState | None = None,
    ):
        """`environment`, `function_timeouts` and `visibility_timeout` override what the template says,
        for fault-injection runs that must recover from crashes in seconds rather than minutes.
        `state`: keep the account on disk (runtime.persistence); without it, it lives in memory only."""
        self.template_path = template or PROJECT_ROOT / "template.yaml"
        self.template = load_template(self.template_path)
        self.parameters = parameter_values(self.template, {**LOCAL_PARAMETERS, **(parameters or {})})
        self.outbox_dir = outbox or Path("outbox")
        self.verified_identities = verified_identities
        self.worker_concurrency = worker_concurrency
        # Function environment values that differ locally: links in mail point at the local API.
        self.environment_overrides = {"UNSUBSCRIBE_BASE_URL": public_url.rstrip("/"), **(environment or {})}
        self.function_timeouts = function_timeouts or {}
        self.visibility_timeout = visibility_timeout
        self.faults: FaultInjector | None = None
        self.clock = RuntimeClock()  # SQS's and the scheduler's time: tests advance it instead of sleeping
        # Held while one emulated AWS request is answered (re-entrant: a test holding it still makes
        # requests of its own, while every other thread waits).
        self.request_lock = threading.RLock()
        self.meter: Meter | None = None  # counts the system's AWS requests (see metering.py)
        self.iam: iam.Authorizer | None = None  # each request against its caller's role (see iam.py)
        self.transformed = iam.sam_transform(self.template, REGION)
        self._stopping = threading.Event()
        self.log_file = log_file or self.outbox_dir / "lambda.log"
        self.physical: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}
        self.functions: dict[str, LocalFunction] = {}
        self.event_sources: list[SqsEventSource] = []
        self.state_machine_arn = ""
        self._stack = ExitStack()
        self._log_stream: TextIO | None = None
        self.state = state
        self._suffix = uuid.uuid4().hex[:8].upper()
        if state is not None:
            self._suffix = state.physical_suffix(self._suffix)  # the same names as the stored account's
        self.resumed: Resumed | None = None  # what loading the stored state found
        self.resolve = Resolver(
            self.parameters,
            {
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::Partition": "aws",
                "AWS::StackName": STACK,
                "AWS::URLSuffix": "amazonaws.com",
            },
            ref=lambda name: self.physical[name],
            get_att=lambda name, attr: self.attributes[(name, attr)],
        )

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> EmbeddedRuntime:
        # Powertools warns when an invocation recorded no metric (the API, the unsubscribe page).
        self._stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self.outbox_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log_stream = self._stack.enter_context(open(self.log_file, "a", buffering=1))
        self.metrics = EmfSink(self._log_stream)
        self._stack.enter_context(mock.patch.dict(os.environ, LOCAL_ENV))
        self._stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        seams.install(self._stack, self)
        self.outbox = Outbox(self.outbox_dir, ACCOUNT, REGION)
        try:
            self._provision()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for source in self.event_sources:
            source.stop()
        self._stopping.set()
        self._outbox_writer.join(10)
        self.outbox.flush()
        self._stack.close()

    def _write_outbox(self) -> None:
        while not self._stopping.wait(0.25):
            self.outbox.flush()

    def client(self, service: str):
        """One client per service for the process (boto3 clients are thread-safe, hold no account state
        of their own — moto's stubber answers them — and creating one costs tens of milliseconds)."""
        return _client(service)

    # --- provisioning ----------------------------------------------------------------------------
    @property
    def physical_suffix(self) -> str:
        """What makes this runtime's physical names its own (CloudFormation adds one too)."""
        return self._suffix

    def _name(self, logical_id: str) -> str:
        return f"{STACK}-{logical_id}-{self._suffix}"

    def _resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v.get("Properties", {}) for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def _provision(self) -> None:
        self._create_tables()
        self._create_queues()
        self._verify_identities()
        self._create_secrets()
        self._create_configuration_sets()
        self._create_event_buses()
        self._name_apis()
        self._name_state_machines()
        self._create_roles()
        self._create_scheduling()
        self._create_functions()
        self._create_state_machines()
        self._authorize_by_role()
        assert self._log_stream is not None  # opened in __enter__
        self._stack.callback(redirect_function_logs(self._log_stream))
        self._stack.callback(self._keep_interpreter_logs_in_log_file())
        if self.state is not None:  # the stored account back in place before anything runs; from then
            # on, what each request changes is on disk before its answer leaves
            seams.observe_requests(self._stack, self.state.observing)
            self.resumed = self.state.attach(self)
            self._stack.callback(self.state.close)
        for source in self.event_sources:
            source.start()
        self._outbox_writer = threading.Thread(target=self._write_outbox, name="outbox-writer", daemon=True)
        self._outbox_writer.start()
        self.scheduler.start()
        self._stack.callback(self.scheduler.stop)

    def _keep_interpreter_logs_in_log_file(self) -> Callable[[], None]:
        """moto's ASL interpreter logs what would be an execution's log (including an `IsPresent`
        that found nothing, at ERROR): into the log file with the functions' logs, not the terminal."""
        interpreter = logging.getLogger("moto.stepfunctions")
        handler = logging.StreamHandler(self._log_stream)
        interpreter.addHandler(handler)
        propagate, interpreter.propagate = interpreter.propagate, False

        def restore() -> None:
            interpreter.removeHandler(handler)
            interpreter.propagate = propagate

        return restore

    def _create_tables(self) -> None:
        ddb = self.client("dynamodb")
        passthrough = (
            "AttributeDefinitions",
            "KeySchema",
            "BillingMode",
            "GlobalSecondaryIndexes",
            "LocalSecondaryIndexes",
            "ProvisionedThroughput",
        )
        for logical_id, props in self._resources("AWS::DynamoDB::Table").items():
            name = self._name(logical_id)
            ddb.create_table(TableName=name, **{k: self.resolve(props[k]) for k in passthrough if k in props})
            if "TimeToLiveSpecification" in props:
                spec = props["TimeToLiveSpecification"]
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": spec["Enabled"], "AttributeName": spec["AttributeName"]},
                )
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    def _create_queues(self) -> None:
        sqs = self.client("sqs")
        queues = self._resources("AWS::SQS::Queue")
        for logical_id, props in queues.items():  # all first: a redrive policy names another queue
            attrs = {
                k: str(v)
                for k, v in props.items()
                if k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "SqsManagedSseEnabled")
            }
            if self.visibility_timeout is not None and "VisibilityTimeout" in attrs:
                attrs["VisibilityTimeout"] = str(self.visibility_timeout)
            url = sqs.create_queue(QueueName=self._name(logical_id), Attributes=attrs)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            self.physical[logical_id] = url
            self.attributes[(logical_id, "Arn")] = arn
            self.attributes[(logical_id, "QueueName")] = self._name(logical_id)
            self.attributes[(logical_id, "QueueUrl")] = url
        for logical_id, props in queues.items():
            if "RedrivePolicy" in props:
                sqs.set_queue_attributes(
                    QueueUrl=self.physical[logical_id],
                    Attributes={"RedrivePolicy": json.dumps(self.resolve(props["RedrivePolicy"]))},
                )

    def _verify_identities(self) -> None:
        ses = self.client("sesv2")
        for identity in self.verified_identities:
            ses.create_email_identity(EmailIdentity=identity)

    def _create_secrets(self) -> None:
        sm = self.client("secretsmanager")
        for logical_id, props in self._resources("AWS::SecretsManager::Secret").items():
            if "SecretString" in props:
                value = str(self.resolve(props["SecretString"]))
            else:
                spec = props.get("GenerateSecretString", {})
                if "SecretStringTemplate" in spec or "GenerateStringKey" in spec:
                    raise NotImplementedError(f"{logical_id}: only plain generated secrets are provisioned locally")
                alphabet = string.ascii_letters + string.digits
                if not spec.get("ExcludePunctuation"):
                    alphabet += "!#$%&()*+,-.:;<=>?[]^_{|}~"
                value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
            arn = sm.create_secret(Name=self._name(logical_id), SecretString=value)["ARN"]
            self.physical[logical_id] = arn  # Ref of a secret is its ARN
            self.attributes[(logical_id, "Id")] = arn

    def _create_configuration_sets(self) -> None:
        # Event destinations are not emulated: tests hand FeedbackFunction the events SES would publish.
        ses = self.client("sesv2")
        for logical_id in self._resources("AWS::SES::ConfigurationSet"):
            ses.create_configuration_set(ConfigurationSetName=self._name(logical_id))
            self.physical[logical_id] = self._name(logical_id)

    def _create_event_buses(self) -> None:
        for logical_id in self._resources("AWS::Events::EventBus"):
            name = self._name(logical_id)
            arn = self.client("events").create_event_bus(Name=name)["EventBusArn"]
            self.physical[logical_id] = name
            self.attributes[(logical_id, "Name")], self.attributes[(logical_id, "Arn")] = name, arn

    def _name_apis(self) -> None:
        # APIs are not emulated here (bulkmail serve serves them): they get an id for Ref and !Sub.
        for logical_id in self._resources("AWS::Serverless::Api"):
            self.physical[logical_id] = self._name(logical_id).lower()

    def _create_roles(self) -> None:
        """Every role of the template after the SAM transform: the functions' and the state machine's too."""
        for logical_id, resource in self.transformed["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                document = json.dumps(self.resolve(resource["Properties"]["AssumeRolePolicyDocument"]))
                role = self.client("iam").create_role(
                    RoleName=self._name(logical_id), AssumeRolePolicyDocument=document
                )
                self.physical[logical_id], self.attributes[(logical_id, "Arn")] = (
                    self._name(logical_id),
                    role["Role"]["Arn"],
                )

    def role_of(self, logical_id: str) -> str:
        """The ARN of the role a function or state machine runs as (from the transformed template)."""
        props = self.transformed["Resources"][logical_id]["Properties"]
        return self.resolve(props.get("Role") or props["RoleArn"])

    def _authorize_by_role(self) -> None:
        """From here on, each request a function, the state machine or a schedule makes needs its role's leave."""
        for logical_id, resource in self.transformed["Resources"].items():
            if resource["Type"] == "AWS::Events::Rule":  # named for the conditions that name them
                self.attributes[(logical_id, "Arn")] = (
                    f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{self._name(logical_id)}"
                )
        self.iam = iam.authorizer(
            self.transformed,
            self.resolve,
            lambda logical_id: self.attributes[(logical_id, "Arn")],
            [self.role_of(k) for k in self._resources("AWS::Serverless::StateMachine")],
            ACCOUNT,
            REGION,
        )

    def _create_functions(self) -> None:
        lam = self.client("lambda")
        functions = {
            k: merged_function(self.template, v) for k, v in self._resources("AWS::Serverless::Function").items()
        }
        # One process holds every function: their environments must agree (they do, via Globals).
        environment: dict[str, str] = {}
        for logical_id in functions:
            arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self._name(logical_id)}"
            self.physical[logical_id] = self._name(logical_id)
            self.attributes[(logical_id, "Arn")] = arn
        for logical_id, props in functions.items():
            variables = self.resolve(props.get("Environment", {}).get("Variables", {}))
            variables.update({k: v for k, v in self.environment_overrides.items() if k in variables})
            for key, value in variables.items():
                if environment.setdefault(key, str(value)) != str(value):
                    raise ValueError(f"{logical_id}: environment variable {key} differs between functions")
        environment.update(self.environment_overrides)
        self._stack.enter_context(mock.patch.dict(os.environ, environment))
        new_container()
        self._stack.callback(new_container)
        for logical_id, props in functions.items():
            name = self._name(logical_id)
            props["Timeout"] = self.function_timeouts.get(logical_id, props["Timeout"])
            role = self.role_of(logical_id)
            lam.create_function(
                FunctionName=name,
                Runtime=props["Runtime"],
                Role=role,
                Handler=props["Handler"],
                Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
                Timeout=int(props["Timeout"]),
                MemorySize=int(props["MemorySize"]),
            )
            code_dir, handler_name = self.template_path.parent / props["CodeUri"], props["Handler"]
            self.functions[name] = LocalFunction(
                logical_id,
                name,
                self.attributes[(logical_id, "Arn")],
                functools.partial(load_handler, code_dir, handler_name),
                int(props["MemorySize"]),
                int(props["Timeout"]),
                role,
            )
            self.functions[name].handler  # noqa: B018 — a first cold start now: a broken handler fails provisioning
            for event in props.get("Events", {}).values():
                if event["Type"] == "SQS":
                    self._map_sqs(self.functions[name], self.resolve(event["Properties"]))

    def _map_sqs(self, fn: LocalFunction, props: dict[str, Any]) -> None:
        queue_arn = props["Queue"]
        queue_id = next(k for (k, a), v in self.attributes.items() if a == "Arn" and v == queue_arn)
        concurrency = int(props.get("ScalingConfig", {}).get("MaximumConcurrency", 2))
        config = MappingConfig(
            queue_url=self.physical[queue_id],
            queue_arn=queue_arn,
            function=fn.logical_id,
            batch_size=int(props.get("BatchSize", 10)),
            batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
            report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
            role_arn=fn.role_arn,
            maximum_concurrency=self.worker_concurrency or concurrency,
        )
        self.event_sources.append(SqsEventSource(config, self.client("sqs"), fn.invoke, REGION))

    def _state_machine_arn(self, logical_id: str) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self._name(logical_id)}"

    def _name_state_machines(self) -> None:
        # Functions may name a state machine in their environment (the API starts executions), but
        # state machines are created after functions: their ARNs follow from their names.
        for logical_id in self._resources("AWS::Serverless::StateMachine"):
            self.physical[logical_id] = self._state_machine_arn(logical_id)
            self.attributes[(logical_id, "Name")] = self._name(logical_id)
            self.attributes[(logical_id, "Arn")] = self._state_machine_arn(logical_id)

    def _create_scheduling(self) -> None:
        """Schedule groups and the roles schedules run as; the runtime fires due one-time schedules."""
        groups = []
        for logical_id in self._resources("AWS::Scheduler::ScheduleGroup"):
            name = self._name(logical_id)
            arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
            self.physical[logical_id], self.attributes[(logical_id, "Arn")] = name, arn
            groups.append(name)
        self.scheduler = OneTimeScheduler(
            self.client("scheduler"), self.client("stepfunctions"), self.client("sqs"), groups, now=self.clock.now
        )

    def _create_state_machines(self) -> None:
        sfn = self.client("stepfunctions")
        for logical_id, props in self._resources("AWS::Serverless::StateMachine").items():
            definition = (self.template_path.parent / props["DefinitionUri"]).read_text()
            for key, value in self.resolve(props.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace("${" + key + "}", str(value))
            arn = sfn.create_state_machine(
                name=self._name(logical_id),
                definition=definition,
                roleArn=self.role_of(logical_id),
                type=props.get("Type", "STANDARD"),
            )["stateMachineArn"]
            if arn != self.physical[logical_id]:
                raise RuntimeError(f"{logical_id}: created as {arn}, announced as {self.physical[logical_id]}")
            self.state_machine_arn = arn

    # --- using it --------------------------------------------------------------------------------
    def table(self, logical_id: str):
        return boto3.resource("dynamodb", region_name=REGION).Table(self.physical[logical_id])

    def start_campaign(self, campaign: dict[str, Any], name: str | None = None) -> str:
        return self.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or f"campaign-{uuid.uuid4().hex[:12]}",
            input=json.dumps(campaign),
        )["executionArn"]

    def describe_execution(self, arn: str) -> dict[str, Any]:
        return self.client("stepfunctions").describe_execution(executionArn=arn)

    def wait_for_execution(
        self, arn: str, timeout: float = 600, on_tick=None, tick_seconds: float = 0.25
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            execution = self.describe_execution(arn)
            if on_tick:
                on_tick(execution)
            if execution["status"] != "RUNNING":
                self.outbox.flush()
                return execution
            time.sleep(tick_seconds)
        raise TimeoutError(f"execution {arn} still running after {timeout:.0f} s")

    def state_path(self, arn: str) -> list[str]:
        """The states the execution entered, in order (from its real history)."""
        sfn = self.client("stepfunctions")
        names: list[str] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            names += [e["stateEnteredEventDetails"]["name"] for e in page["events"] if "stateEnteredEventDetails" in e]
        return names

    def pause_workers(self) -> None:
        for source in self.event_sources:
            source.enabled.clear()

    def resume_workers(self) -> None:
        for source in self.event_sources:
            source.enabled.set()
