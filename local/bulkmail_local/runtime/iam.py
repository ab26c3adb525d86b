"""IAM, enforced locally: every AWS request a function, the state machine or the scheduler makes is
authorized against the role template.yaml gives it, after the SAM transform (policy templates,
inline statements, AWS::IAM::Policy resources, the managed policies SAM attaches), on the resources
AWS authorizes that action on. A denied request fails as on AWS, with AccessDenied.

Who is calling: each function invocation (and the event source polling for it, and the scheduler
starting a schedule's target) runs `acting_as(role_arn)`. moto's ASL interpreter signs its service
integrations with its own access key, so those are the state machine's. Requests made outside any
of these are the operator's (a test, the CLI) and are not restricted; so are requests signed with
credentials of their own (another account's SES keys), which this stack's IAM does not govern.

Policies are evaluated by moto's evaluator (moto.iam.access_control); this module only finds the
principal, the action and the resources of each request.
"""

from __future__ import annotations

import email.parser
import email.utils
import json
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.awsrequest import AWSResponse
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import determine_request_protocol, normalize_request
from moto.core.routing import get_service_router
from moto.core.utils import get_service_model
from moto.iam.access_control import IAMPolicy, IAMPolicyStatement, PermissionResult
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.secretsmanager.models import secretsmanager_backends
from moto.ses.models import ses_backends

from bulkmail_local.runtime.seams import aws_response

# Template resource types this module honours (the roles are created by the runtime).
POLICY_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::SQS::QueuePolicy")
# The access key moto's ASL interpreter signs a state machine's service integrations with.
STATE_MACHINE_ACCESS_KEY = "ak"
# botocore's service id (as in its event names) -> its service name, where they differ
_SERVICE_NAMES = {"sfn": "stepfunctions", "secrets-manager": "secretsmanager", "eventbridge": "events"}
# botocore's service id -> IAM's service prefix, where they differ
_IAM_PREFIXES = {
    "sfn": "states",
    "secrets-manager": "secretsmanager",
    "eventbridge": "events",
    "sesv2": "ses",
    "cloudwatch-logs": "logs",
}
# Operations whose IAM action is another operation's (batches are authorized as their single form).
_ACTION_OF = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "lambda:Invoke": "lambda:InvokeFunction",
}
_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}
# moto evaluates StringEquals only and passes any other operator: an exact ARN under ArnEquals is
# the same test, anything else would be a condition nobody checks, so the runtime refuses it.
_CONDITION_OPERATORS = {"StringEquals", "ArnEquals"}

_principal: ContextVar[str | None] = ContextVar("bulkmail_local_principal", default=None)


@contextmanager
def acting_as(role_arn: str | None) -> Iterator[None]:
    """AWS requests made inside run as this role (None: as whoever called)."""
    if role_arn is None:
        yield
        return
    token = _principal.set(role_arn)
    try:
        yield
    finally:
        _principal.reset(token)


@contextmanager
def as_operator() -> Iterator[None]:
    """AWS requests made inside are the operator's (the emulation of a service, not the system's code)."""
    token = _principal.set(None)
    try:
        yield
    finally:
        _principal.reset(token)


# --- the template after the SAM transform -------------------------------------------------------
def sam_transform(template: dict[str, Any], region: str) -> dict[str, Any]:
    """template.yaml as CloudFormation receives it (offline: local code URIs stand in as S3 ones).
    A copy of its own for each caller; translated once per template, as the translation is half of
    a runtime's start-up."""
    transformed: dict[str, Any] = json.loads(_sam_transform(json.dumps(template, sort_keys=True), region))
    return transformed


@lru_cache(maxsize=4)
def _sam_transform(template_json: str, region: str) -> str:
    from samtranslator.metrics.metrics import Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    fragment = json.loads(template_json)
    for resource in fragment["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "DefinitionUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://local/{props[key]}"

    def no_managed_policy_names() -> dict[str, str]:
        raise ValueError("Policies name a managed policy by name: give its ARN")

    metrics = Metrics()  # the translator's own usage metrics: published to nowhere (its default)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region), metrics=metrics)
    transformed = translator.translate(fragment, parameter_values={}, get_managed_policy_map=no_managed_policy_names)
    metrics.publish()
    return json.dumps(transformed)


@lru_cache(maxsize=1)
def _managed_policies() -> dict[str, Any]:
    return json.loads(aws_managed_policies_data)


def managed_policy_document(arn: str) -> dict[str, Any]:
    """An AWS managed policy's document, from the copy moto ships."""
    name = arn.rsplit("/", 1)[-1]
    policies = _managed_policies()
    if name not in policies:
        raise KeyError(f"{arn}: not an AWS managed policy moto knows")
    return policies[name]["Document"]


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _evaluable(statement: dict[str, Any], where: str) -> dict[str, Any]:
    """The statement as moto evaluates it: actions lower-cased (IAM's are case-insensitive, moto's match
    is not); refused when it has a condition moto would not check."""
    for operator, keys in statement.get("Condition", {}).items():
        values = [v for vs in keys.values() for v in _as_list(vs)]
        if operator not in _CONDITION_OPERATORS or (operator == "ArnEquals" and any("*" in v for v in values)):
            raise NotImplementedError(f"{where}: condition {operator} {keys} is not evaluated locally")
    out = dict(statement)
    for key in ("Action", "NotAction"):
        if key in out:
            out[key] = [a.lower() for a in _as_list(out[key])]
    return out


@dataclass(frozen=True)
class Grant:
    """One action a policy statement allows on one of its resources."""

    policy: str
    action: str
    resource: str


@dataclass
class Role:
    arn: str
    logical_id: str
    used_by: str  # the function, state machine or scheduler running as it
    statements: list[tuple[str, dict[str, Any]]]  # (policy name, statement)
    evaluated: list[dict[str, Any]] = field(default_factory=list)  # the same, as moto evaluates them

    def grants(self) -> list[Grant]:
        return [
            Grant(policy, action, resource)
            for policy, s in self.statements
            if s["Effect"] == "Allow"
            for action in _as_list(s.get("Action", []))
            for resource in _as_list(s.get("Resource", "*"))
        ]


def roles_from(
    transformed: dict[str, Any], resolve: Callable[[Any], Any], role_arn: Callable[[str], str]
) -> dict[str, Role]:
    """Every role of the transformed template, by ARN, with every statement that applies to it."""
    resources = transformed["Resources"]
    users: dict[str, list[str]] = {}
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        role_ref = props.get("Role") or props.get("RoleArn")
        if resource["Type"] in ("AWS::Lambda::Function", "AWS::StepFunctions::StateMachine") and role_ref:
            users.setdefault(role_ref["Fn::GetAtt"][0], []).append(logical_id)
    roles: dict[str, Role] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        props = resource["Properties"]
        statements = [
            (arn.rsplit("/", 1)[-1], s)
            for arn in resolve(props.get("ManagedPolicyArns", []))
            for s in _statements(managed_policy_document(arn))
        ]
        statements += [
            (p["PolicyName"], s) for p in resolve(props.get("Policies", [])) for s in _statements(p["PolicyDocument"])
        ]
        used_by = ", ".join(users.get(logical_id, [])) or logical_id
        roles[role_arn(logical_id)] = Role(role_arn(logical_id), logical_id, used_by, statements)
    by_logical_id = {r.logical_id: r for r in roles.values()}
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy":
            props = resource["Properties"]
            document = resolve(props["PolicyDocument"])
            for role_ref in props["Roles"]:
                by_logical_id[role_ref["Ref"]].statements += [(props["PolicyName"], s) for s in _statements(document)]
    for role in roles.values():
        role.evaluated = [_evaluable(s, f"{role.logical_id}/{p}") for p, s in role.statements]
    return roles


def queue_policies(
    transformed: dict[str, Any], resolve: Callable[[Any], Any], queue_arn: Callable[[str], str]
) -> dict[str, list[dict[str, Any]]]:
    """Queue ARN -> the statements of its AWS::SQS::QueuePolicy (who else may use the queue)."""
    policies: dict[str, list[dict[str, Any]]] = {}
    for logical_id, resource in transformed["Resources"].items():
        if resource["Type"] == "AWS::SQS::QueuePolicy":
            props = resolve(resource["Properties"])
            for url in props["Queues"]:
                policies.setdefault(queue_arn(url), []).extend(
                    _evaluable(s, logical_id) for s in _statements(props["PolicyDocument"])
                )
    return policies


# --- what a request asks for ----------------------------------------------------------------------
def request_parameters(service_id: str, request) -> dict[str, Any]:
    """The API parameters of a request as botocore sent it, parsed by moto's own request parsers."""
    service = _SERVICE_NAMES.get(service_id, service_id)
    werkzeug_request = normalize_request(request)
    operation, uri_params = get_service_router(service).match(werkzeug_request)
    protocol = determine_request_protocol(get_service_model(service), werkzeug_request.content_type)
    return PROTOCOL_PARSERS[protocol](operation).parse(
        {
            "method": werkzeug_request.method,
            "values": werkzeug_request.values,
            "headers": werkzeug_request.headers,
            "body": werkzeug_request.data,
            "url_path": werkzeug_request.path,
            "url_params": uri_params,
        }
    )


@dataclass(frozen=True)
class Needed:
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()  # condition keys AWS supplies with the request


class Arns:
    """The ARNs AWS authorizes each action on, in one account and region."""

    def __init__(
        self,
        partition: str,
        region: str,
        account: str,
        secret_arn: Callable[[str], str | None],
        ses_identities: Callable[[], set[str]],
    ):
        self.partition, self.region, self.account = partition, region, account
        self.secret_arn = secret_arn
        self.ses_identities = ses_identities

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        region = self.region if region is None else region
        account = self.account if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def queue(self, url: str) -> str:
        account, name = url.rstrip("/").split("/")[-2:]
        return self.arn("sqs", name, account=account)

    def table(self, name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else self.arn("dynamodb", f"table/{name}")
        return f"{arn}/index/{index}" if index else arn

    def ses_identity(self, raw_message: bytes | None, from_address: str | None) -> str:
        """The identity SES sends as: the From address if it is verified itself, else its domain."""
        if not from_address and raw_message:
            headers = email.parser.BytesHeaderParser().parsebytes(raw_message)
            from_address = email.utils.parseaddr(str(headers.get("From", "")))[1]
        address = (from_address or "").lower()
        identity = address if address in self.ses_identities() else address.rpartition("@")[2]
        return self.arn("ses", f"identity/{identity}")

    def needed(self, service_id: str, operation: str, params: dict[str, Any]) -> list[Needed]:
        prefix = _IAM_PREFIXES.get(service_id, service_id)
        action = _ACTION_OF.get(f"{prefix}:{operation}", f"{prefix}:{operation}")
        if prefix == "dynamodb":
            if operation.startswith("Transact"):
                return [
                    Needed(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", self.table(op["TableName"]))
                    for item in params["TransactItems"]
                    for kind, op in item.items()
                ]
            if "RequestItems" in params:
                return [Needed(action, self.table(t)) for t in params["RequestItems"]]
            if "TableName" in params:
                return [Needed(action, self.table(params["TableName"], params.get("IndexName")))]
        if prefix == "sqs":
            if "QueueUrl" in params:
                return [Needed(action, self.queue(params["QueueUrl"]))]
            if "QueueName" in params:
                return [
                    Needed(
                        action,
                        self.arn(
                            "sqs", params["QueueName"], account=params.get("QueueOwnerAWSAccountId") or self.account
                        ),
                    )
                ]
        if prefix == "secretsmanager" and "SecretId" in params:
            secret = params["SecretId"]
            arn = self.secret_arn(secret) or (
                secret if secret.startswith("arn:") else self.arn("secretsmanager", f"secret:{secret}")
            )
            return [Needed(action, arn)]
        if prefix == "states":
            for key in ("executionArn", "stateMachineArn"):
                if key in params:
                    return [Needed(action, params[key])]
        if prefix == "events" and operation == "PutEvents":
            buses = {e.get("EventBusName") or "default" for e in params["Entries"]}
            return [
                Needed(action, b if b.startswith("arn:") else self.arn("events", f"event-bus/{b}"))
                for b in sorted(buses)
            ]
        if prefix == "scheduler" and "Name" in params:
            needed = [
                Needed(
                    action, self.arn("scheduler", f"schedule/{params.get('GroupName') or 'default'}/{params['Name']}")
                )
            ]
            if "Target" in params:  # the role the schedule will run as is passed to Scheduler
                needed.append(
                    Needed(
                        "iam:PassRole",
                        params["Target"]["RoleArn"],
                        (("iam:PassedToService", "scheduler.amazonaws.com"),),
                    )
                )
            return needed
        if prefix == "ses" and operation == "SendEmail":
            raw = params.get("Content", {}).get("Raw", {}).get("Data")
            needed = [Needed(action, self.ses_identity(raw, params.get("FromEmailAddress")))]
            if params.get("ConfigurationSetName"):
                needed.append(Needed(action, self.arn("ses", f"configuration-set/{params['ConfigurationSetName']}")))
            if params.get("ListManagementOptions"):
                needed.append(
                    Needed(
                        action, self.arn("ses", f"contact-list/{params['ListManagementOptions']['ContactListName']}")
                    )
                )
            return needed
        if prefix == "lambda" and "FunctionName" in params:
            name = params["FunctionName"]
            return [Needed(action, name if name.startswith("arn:") else self.arn("lambda", f"function:{name}"))]
        if prefix == "sts" and operation == "GetCallerIdentity":
            return []  # needs no permission
        return [Needed(action, "*")]  # an action that names no resource type


# --- the authorizer -------------------------------------------------------------------------------
def _allowed(statements: list[dict[str, Any]], needed: Needed) -> bool:
    """moto's evaluation of a set of statements: an explicit Deny wins, then any Allow."""
    policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return (
        policy.is_action_permitted(needed.action.lower(), needed.resource, None, dict(needed.context))
        == PermissionResult.PERMITTED
    )


def _access_key(request) -> str | None:
    authorization = request.headers.get("Authorization", b"")
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    match = re.search(r"Credential=([^/]+)/", authorization)
    return match.group(1) if match else None


class Authorizer:
    """Authorizes each request against its caller's role; records what it authorized and denied."""

    def __init__(
        self,
        roles: dict[str, Role],
        queue_policies: dict[str, list[dict[str, Any]]],
        arns: Arns,
        state_machine_role: str | None,
        ambient_access_key: str,
    ):
        self.roles = roles
        self.queue_policies = queue_policies
        self.arns = arns
        self.state_machine_role = state_machine_role
        self.ambient_access_key = ambient_access_key
        self.enforcing = True
        self.authorized: Counter[tuple[str, str, str]] = Counter()  # (role ARN, action, resource) -> requests
        self.denied: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def principal(self, request) -> str | None:
        key = _access_key(request)
        if key == STATE_MACHINE_ACCESS_KEY:
            return self.state_machine_role
        if key != self.ambient_access_key:
            return None  # credentials of their own: not this stack's roles
        return _principal.get()

    def check(self, event_name: str, request) -> AWSResponse | None:
        """None when the request may go on; else the AccessDenied response AWS would give."""
        principal = self.principal(request)
        if principal is None:
            return None
        _, service_id, operation = event_name.split(".", 2)
        needed = self.arns.needed(service_id, operation, request_parameters(service_id, request))
        role = self.roles.get(principal)
        statements = role.evaluated if role else []
        for need in needed:
            allowed = _allowed(statements, need)
            with self._lock:
                (self.authorized if allowed else self.denied)[(principal, need.action, need.resource)] += 1
            if not allowed and self.enforcing:
                return access_denied(service_id, principal, need, role.used_by if role else principal)
        return None

    def deliver_as_service(self, service: str, action: str, queue_arn: str, source_arn: str) -> None:
        """A service (EventBridge writing a dead letter) using a queue: its queue policy decides."""
        statements = [
            s
            for s in self.queue_policies.get(queue_arn, [])
            if service in _as_list(s.get("Principal", {}).get("Service", []))
        ]
        need = Needed(action, queue_arn, (("aws:SourceArn", source_arn),))
        allowed = _allowed(statements, need)
        with self._lock:
            (self.authorized if allowed else self.denied)[(service, action, queue_arn)] += 1
        if not allowed and self.enforcing:
            raise PermissionError(
                f"{service} is not authorized to perform: {action} on resource: {queue_arn} "
                f"(for {source_arn}): no queue policy allows it"
            )

    def unused(self, role_arn: str) -> list[Grant]:
        """The grants of a role (each action on each resource) that no authorized request matched."""
        used = [(a, r) for (p, a, r) in self.authorized if p == role_arn]
        spare = []
        for grant in self.roles[role_arn].grants():
            statement = IAMPolicyStatement(
                {"Effect": "Allow", "Action": grant.action.lower(), "Resource": grant.resource}
            )
            if not any(statement.is_action_permitted(a.lower(), r) == PermissionResult.PERMITTED for a, r in used):
                spare.append(grant)
        return spare


def authorizer(
    transformed: dict[str, Any],
    resolve: Callable[[Any], Any],
    arn_of: Callable[[str], str],
    state_machine_roles: list[str],
    account: str,
    region: str,
) -> Authorizer:
    """The authorizer of a stack provisioned on moto (in the current mock_aws, whose credentials sign
    the functions' requests)."""
    if len(set(state_machine_roles)) > 1:
        raise NotImplementedError("the runtime tells one state machine's requests from the functions' only")

    def secret_arn(secret_id: str) -> str | None:
        secret = secretsmanager_backends[account][region].secrets.get(secret_id)
        return secret.arn if secret is not None else None

    arns = Arns("aws", region, account, secret_arn, lambda: set(ses_backends[account][region].email_identities))
    return Authorizer(
        roles_from(transformed, resolve, arn_of),
        queue_policies(transformed, resolve, arns.queue),
        arns,
        next(iter(state_machine_roles), None),
        os.environ["AWS_ACCESS_KEY_ID"],
    )


_JSON_DENIAL = "AccessDeniedException"


def access_denied(service_id: str, principal: str, need: Needed, session: str) -> AWSResponse:
    """AccessDenied as the service's protocol carries it (botocore raises it as a ClientError)."""
    role_name = principal.rsplit("/", 1)[-1]
    account = principal.split(":")[4]
    partition = principal.split(":")[1]
    message = (
        f"User: arn:{partition}:sts::{account}:assumed-role/{role_name}/{session} is not authorized to "
        f"perform: {need.action} on resource: {need.resource} because no identity-based policy allows "
        f"the {need.action} action"
    )
    service = _SERVICE_NAMES.get(service_id, service_id)
    protocol = get_service_model(service).protocol
    headers = {"x-amzn-RequestId": "local-iam", "Content-Type": "application/x-amz-json-1.0"}
    if protocol in ("json", "rest-json"):
        headers["x-amzn-ErrorType"] = _JSON_DENIAL
        if service == "sqs":  # JSON with query-compatible error codes
            headers["x-amzn-query-error"] = "AccessDenied;Sender"
        body = json.dumps({"__type": _JSON_DENIAL, "message": message, "Message": message}).encode()
    else:
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
            f"</Error><RequestId>local-iam</RequestId></ErrorResponse>"
        ).encode()
    return aws_response("https://local-iam", 403 if protocol == "rest-json" else 400, headers, body)
