"""Durable local state: the emulated account kept in SQLite, written through, loaded back on start.

moto keeps everything in memory. With a state directory, the runtime mirrors what each request
changed into `state.sqlite3` before the response returns (under the runtime's request lock, one
transaction per request), so whatever an API acknowledged survives `kill -9`:

- DynamoDB items, by table and key, read back from moto after every write (Put/Update/Delete,
  batch and transactional writes, the state machine's own integrations);
- SQS messages with their body, attributes and receive count, by id (in flight or not);
- secrets (the unsubscribe signing key: links already mailed must keep working);
- EventBridge Scheduler schedules;
- executions started, until they end.

On start the stack is provisioned again under the same physical names (the suffix is stored), the
mirror is loaded back into moto, messages that were in flight are visible again (the ledger's batch
claims keep their redelivery from sending twice) and every campaign whose workflow was running goes
on in a new execution from the cursor its item holds. The sent mail itself is the outbox's `.eml`
files, written before SES's answer returns too.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from moto.core.responses import BaseResponse
from moto.dynamodb.exceptions import ResourceNotFoundException
from moto.dynamodb.models import dynamodb_backends
from moto.scheduler.models import scheduler_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sqs.models import Message, sqs_backends
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from bulkmail.adapters.campaigns import CampaignStore
from bulkmail.adapters.dynamo import plain
from bulkmail.adapters.stepfunctions import start_execution_once
from bulkmail.settings import Settings
from bulkmail.workflow import continue_as_new, workflow_state
from bulkmail_local.runtime.stack import ACCOUNT, REGION

if TYPE_CHECKING:
    from bulkmail_local.runtime.stack import EmbeddedRuntime

logger = logging.getLogger(__name__)

STATE_FILE = "state.sqlite3"
SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (table_name TEXT NOT NULL, item_key TEXT NOT NULL, item TEXT NOT NULL,
                                  PRIMARY KEY (table_name, item_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (queue TEXT NOT NULL, id TEXT NOT NULL, message TEXT NOT NULL,
                                     receive_count INTEGER NOT NULL, PRIMARY KEY (queue, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS schedules (group_name TEXT NOT NULL, name TEXT NOT NULL, schedule TEXT NOT NULL,
                                      PRIMARY KEY (group_name, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executions (arn TEXT PRIMARY KEY, state_machine TEXT NOT NULL, name TEXT NOT NULL,
                                       input TEXT NOT NULL);
"""
_MIRRORED = frozenset({"dynamodb", "sqs", "secretsmanager", "scheduler", "stepfunctions", "sesv2", "ses"})
# Operations that change nothing: no mirror work after them.
_READ_PREFIXES = ("Get", "List", "Describe", "BatchGet", "TransactGet", "Query", "Scan")
# A campaign's workflow is running in these states (a cancelled one until its last recipient is accounted for).
_RUNNING_STATUSES = ("queued", "processing", "paused", "cancelled")


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


@dataclass
class Resumed:
    """What `DurableState.attach` found and did: for `bulkmail serve` to report."""

    fresh: bool
    items: int = 0
    messages: int = 0
    schedules: int = 0
    continued: list[str] = field(default_factory=list)  # campaign ids going on in a new execution
    restarted: list[str] = field(default_factory=list)  # executions started again from their input


class StateUnavailable(RuntimeError):
    """The state directory cannot be used (another serve holds it, or another version wrote it)."""


class DurableState:
    """The SQLite mirror of one emulated account. `EmbeddedRuntime(state=DurableState(dir))` uses it."""

    def __init__(self, directory: Path, *, reset: bool = False):
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.directory / "lock", "w")  # noqa: SIM115 — held while the state is in use
        except OSError as exc:
            raise StateUnavailable(
                f"cannot keep the state in {self.directory}: {exc.strerror or exc}; give another --state-dir"
            ) from None
        # One process per state: a second serve on it would send the same campaigns again.
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StateUnavailable(
                f"{self.directory} is in use by another bulkmail serve: stop it, or give another --state-dir"
            ) from None
        if reset:
            for stale in self.directory.glob(STATE_FILE + "*"):  # the database, its log and shared memory
                stale.unlink()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL: a transaction is on disk (in the log) when it commits, so a killed process loses
        # nothing it committed; NORMAL syncs at checkpoints, not per commit (a power cut may lose the
        # last commits, never corrupt the file).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self.fresh = self._meta("suffix") is None  # nothing stored yet: a new account
        version = self._meta("schema_version")
        if version not in (None, SCHEMA_VERSION):
            self.close()
            raise StateUnavailable(
                f"{self.path} holds state of schema {version}, this version reads "
                f"{SCHEMA_VERSION}: start afresh with --reset"
            )
        self._runtime: EmbeddedRuntime | None = None
        self._queues: dict[str, dict[str, int]] = {}  # queue name -> message id -> receive count, as mirrored

    # --- meta ----------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def physical_suffix(self, new: str) -> str:
        """The suffix of every physical name: the stored one, so that a restart finds its own resources."""
        with self._lock:
            stored = self._meta("suffix")
            if stored is None:
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)", [("suffix", new), ("schema_version", SCHEMA_VERSION)]
                )
                return new
            return stored

    def close(self) -> None:
        with self._lock:
            self._runtime = None
            self._db.close()
            self._lock_file.close()  # releases the directory

    # --- start: load the mirror into moto, then write through ----------------------------------
    def attach(self, runtime: EmbeddedRuntime) -> Resumed:
        """Load the stored account into the freshly provisioned one, start recording, resume workflows."""
        resumed = Resumed(fresh=self.fresh)
        with self._lock:
            resumed.items = self._load_items(runtime)
            resumed.messages = self._load_messages(runtime)
            self._load_secrets(runtime)
            resumed.schedules = self._load_schedules(runtime)
            self._runtime = runtime
            with self._transaction():
                self._mirror_secrets()
                self._mirror_schedules()
        self._resume_workflows(runtime, resumed)
        return resumed

    def _load_items(self, runtime: EmbeddedRuntime) -> int:
        backend = dynamodb_backends[ACCOUNT][REGION]
        count = 0
        for table_name, item in self._db.execute("SELECT table_name, item FROM items"):
            if table_name not in backend.tables:
                logger.warning("stored items of table %s, which the template no longer has: left out", table_name)
                continue
            backend.put_item(table_name, json.loads(item))
            count += 1
        return count

    def _load_messages(self, runtime: EmbeddedRuntime) -> int:
        backend = sqs_backends[ACCOUNT][REGION]
        count = 0
        for queue_name, stored, receive_count in self._db.execute("SELECT queue, message, receive_count FROM messages"):
            if queue_name not in backend.queues:
                logger.warning("stored messages of queue %s, which the template no longer has: left out", queue_name)
                continue
            data = json.loads(stored)
            message = Message(data["id"], data["body"], data["system_attributes"])
            message.message_attributes = data["message_attributes"]
            message.sent_timestamp = data["sent_timestamp"]
            message.approximate_first_receive_timestamp = data["first_receive_timestamp"]
            message.approximate_receive_count = receive_count
            message.group_id, message.deduplication_id = data["group_id"], data["deduplication_id"]
            message.sequence_number = data["sequence_number"]
            # Visible now: whoever was processing it went with the old process.
            backend.queues[queue_name].add_message(message)
            self._queues.setdefault(queue_name, {})[message.id] = receive_count
            count += 1
        return count

    def _load_secrets(self, runtime: EmbeddedRuntime) -> None:
        backend = secretsmanager_backends[ACCOUNT][REGION]
        for name, value in self._db.execute("SELECT name, value FROM secrets").fetchall():
            if name in backend.secrets:  # provisioned again with a new value: the stored one is the one in use
                absent: dict[str, Any] = {
                    "secret_binary": None,
                    "client_request_token": None,
                }  # as moto's API passes them
                backend.put_secret_value(secret_id=name, secret_string=value, version_stages=["AWSCURRENT"], **absent)

    def _load_schedules(self, runtime: EmbeddedRuntime) -> int:
        backend = scheduler_backends[ACCOUNT][REGION]
        count = 0
        for row in self._db.execute("SELECT schedule FROM schedules").fetchall():
            s = json.loads(row[0])
            backend.create_schedule(
                description=s["Description"],
                end_date=s["EndDate"],
                flexible_time_window=s["FlexibleTimeWindow"],
                group_name=s["GroupName"],
                kms_key_arn=s["KmsKeyArn"],
                name=s["Name"],
                schedule_expression=s["ScheduleExpression"],
                schedule_expression_timezone=s["ScheduleExpressionTimezone"],
                start_date=s["StartDate"],
                state=s["State"],
                target=s["Target"],
                action_after_completion=s["ActionAfterCompletion"],
            )
            count += 1
        return count

    def _resume_workflows(self, runtime: EmbeddedRuntime, resumed: Resumed) -> None:
        """Executions do not survive (moto's run in threads of the old process). A campaign's cursor and
        counters live in its item, so its workflow goes on in a new execution, as it does after
        StepsPerExecution steps; an execution that had not yet stored its campaign starts again."""
        settings = Settings.from_env()
        campaigns = CampaignStore(runtime.physical["CampaignsTable"])
        heads = [plain(i) for i in self._scan(runtime, "CampaignsTable") if "status" in i]  # not counter shards
        records = {c["campaign_id"]: c for c in campaigns.with_counts(heads, consistent=True)}
        with self._lock:
            started = self._db.execute("SELECT name, state_machine, input FROM executions").fetchall()
            self._db.execute("DELETE FROM executions")  # the executions started below record themselves
        sfn = runtime.client("stepfunctions")
        for name, state_machine, payload in started:
            record = records.get(json.loads(payload).get("campaign_id") or name)
            if record is None or record.get("status") == "scheduled":  # stopped before PersistCampaign stored it
                sfn.start_execution(stateMachineArn=state_machine, name=name, input=payload)
                resumed.restarted.append(name)
        for campaign_id, record in records.items():
            status = record.get("status")
            finished = record.get("fanout_done") and record.get("processed_count", 0) >= record.get("total_contacts", 0)
            if status in _RUNNING_STATUSES and not (status == "cancelled" and finished):
                state = workflow_state(campaign_id, settings, continuation=int(record.get("continuations", 0)))
                continue_as_new(
                    state, runtime.state_machine_arn, campaigns=campaigns, start_execution=start_execution_once
                )
                resumed.continued.append(campaign_id)

    @staticmethod
    def _scan(runtime: EmbeddedRuntime, logical_id: str) -> Iterable[dict[str, Any]]:
        table = runtime.table(logical_id)
        page = table.scan(ConsistentRead=True)
        yield from page["Items"]
        while "LastEvaluatedKey" in page:
            page = table.scan(ConsistentRead=True, ExclusiveStartKey=page["LastEvaluatedKey"])
            yield from page["Items"]

    # --- write-through ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One request's mirror writes commit together, or not at all."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def observing(self, call_action: Callable[[BaseResponse], Any]) -> Callable[[BaseResponse], Any]:
        """moto's BaseResponse.call_action, followed by mirroring what the request changed. Every request
        moto answers passes there: the runtime's own (already under its request lock) and those sent
        straight to the AWS endpoint (which take the lock for the mirroring)."""

        def call_action_and_mirror(response: BaseResponse) -> Any:
            result = call_action(response)
            if response.service_name in _MIRRORED:
                self.record(response.service_name, response._get_action(), response.raw_body, result)
            return result

        return call_action_and_mirror

    def record(self, service: str, operation: str, body: Any, result: tuple[int, Any, Any]) -> None:
        """After a request: mirror what it changed, in one transaction."""
        if operation.startswith(_READ_PREFIXES) or (service == "stepfunctions" and operation != "StartExecution"):
            return
        runtime = self._runtime
        if runtime is None:
            return  # provisioning or loading: nothing to mirror yet
        with runtime.request_lock, self._lock:
            if self._runtime is None:
                return  # closed meanwhile
            with self._transaction():
                if service == "dynamodb":
                    self._mirror_items(operation, json.loads(body or "{}"))
                elif service == "sqs":
                    self._mirror_messages()
                elif service == "secretsmanager":
                    self._mirror_secrets()
                elif service == "scheduler":
                    self._mirror_schedules()
                elif service == "stepfunctions":
                    self._mirror_execution(json.loads(body or "{}"), result)
                elif operation.startswith("Send"):  # SES
                    runtime.outbox.flush()  # the .eml is on disk before SES's answer returns

    # DynamoDB: the items a write names, as they are now
    def _mirror_items(self, operation: str, params: dict[str, Any]) -> None:
        backend = dynamodb_backends[ACCOUNT][REGION]
        keys = self._written_keys(backend, operation, params)
        if keys is None:  # an operation whose writes are not named item by item (PartiQL, DeleteTable, …)
            self._db.execute("DELETE FROM items")
            self._db.executemany(
                "INSERT INTO items VALUES (?, ?, ?)",
                (
                    (table.name, _key_text(_item_key(table, item.to_json()["Attributes"])), _item_text(item))
                    for table in list(backend.tables.values())
                    for item in list(table.all_items())
                ),
            )
            return
        for table_name, key in keys:
            try:
                table = backend.get_table(table_name)
            except ResourceNotFoundException:  # a write to a table that does not exist changed nothing
                continue
            item = backend.get_item(table.name, key)
            if item is None:
                self._db.execute(
                    "DELETE FROM items WHERE table_name = ? AND item_key = ?", (table.name, _key_text(key))
                )
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO items VALUES (?, ?, ?)", (table.name, _key_text(key), _item_text(item))
                )

    @staticmethod
    def _written_keys(backend, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
        """The (table, key) of each item the request may have written; None when it does not say."""

        def key_of(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
            return _item_key(backend.get_table(table_name), item)

        if operation == "PutItem":
            return [(params["TableName"], key_of(params["TableName"], params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if operation == "BatchWriteItem":
            return [
                (name, r["DeleteRequest"]["Key"] if "DeleteRequest" in r else key_of(name, r["PutRequest"]["Item"]))
                for name, requests in params["RequestItems"].items()
                for r in requests
            ]
        if operation == "TransactWriteItems":
            keys = []
            for entry in params["TransactItems"]:
                ((kind, op),) = entry.items()
                if kind == "Put":
                    keys.append((op["TableName"], key_of(op["TableName"], op["Item"])))
                elif kind in ("Update", "Delete"):
                    keys.append((op["TableName"], op["Key"]))
            return keys
        if operation in ("CreateTable", "UpdateTimeToLive", "UpdateTable", "TagResource", "UntagResource"):
            return []
        return None

    # SQS: every queue's messages against the mirror (queues stay shallow: the backlog is bounded)
    def _mirror_messages(self) -> None:
        backend = sqs_backends[ACCOUNT][REGION]
        for name, queue in list(backend.queues.items()):
            known = self._queues.setdefault(name, {})
            now = {m.id: m for m in queue._messages}
            gone = [i for i in known if i not in now]
            if gone:
                self._db.executemany("DELETE FROM messages WHERE queue = ? AND id = ?", [(name, i) for i in gone])
                for i in gone:
                    del known[i]
            for message_id, m in now.items():
                if message_id not in known:
                    self._db.execute(
                        "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?)",
                        (name, message_id, json.dumps(_message_data(m)), m.approximate_receive_count),
                    )
                elif known[message_id] != m.approximate_receive_count:
                    self._db.execute(
                        "UPDATE messages SET receive_count = ? WHERE queue = ? AND id = ?",
                        (m.approximate_receive_count, name, message_id),
                    )
                known[message_id] = m.approximate_receive_count

    def _mirror_secrets(self) -> None:
        backend = secretsmanager_backends[ACCOUNT][REGION]
        self._db.execute("DELETE FROM secrets")
        for name, secret in list(backend.secrets.items()):
            version = secret.versions.get(secret.default_version_id or "") or {}
            if not secret.is_deleted() and version.get("secret_string") is not None:
                self._db.execute("INSERT INTO secrets VALUES (?, ?)", (name, version["secret_string"]))

    def _mirror_schedules(self) -> None:
        backend = scheduler_backends[ACCOUNT][REGION]
        self._db.execute("DELETE FROM schedules")
        for group in list(backend.schedule_groups.values()):
            for schedule in list(group.schedules.values()):
                self._db.execute(
                    "INSERT INTO schedules VALUES (?, ?, ?)",
                    (group.name, schedule.name, json.dumps(schedule.to_dict(), default=str)),
                )

    def _mirror_execution(self, params: dict[str, Any], result: tuple[int, Any, Any]) -> None:
        status, _, answer = result
        if status >= 300:
            return
        arn = json.loads(answer)["executionArn"]
        # execute_state_machine is on: the backend is the ASL interpreter's, which keeps the executions.
        backend = cast(StepFunctionsParserBackend, stepfunctions_backend(ACCOUNT, REGION))
        running = {e.execution_arn for e in backend._get_executions() if e.status == "RUNNING"}
        self._db.executemany(
            "DELETE FROM executions WHERE arn = ?",
            [(a,) for (a,) in self._db.execute("SELECT arn FROM executions").fetchall() if a not in running],
        )  # the ones that ended since: nothing to resume
        self._db.execute(
            "INSERT OR REPLACE INTO executions VALUES (?, ?, ?, ?)",
            (arn, params["stateMachineArn"], params.get("name") or arn.rsplit(":", 1)[-1], params.get("input") or "{}"),
        )

    # --- figures ---------------------------------------------------------------------------------
    def size_bytes(self) -> int:
        """The state's size on disk (the database and its write-ahead log)."""
        return sum(p.stat().st_size for p in self.directory.glob(STATE_FILE + "*"))


def _item_key(table, item: dict[str, Any]) -> dict[str, Any]:
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {n: item[n] for n in names if n in item}


def _item_text(item) -> str:
    return json.dumps(item.to_json()["Attributes"], separators=(",", ":"))


def _message_data(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "body": m.body,
        "message_attributes": m.message_attributes,
        "system_attributes": m.system_attributes,
        "sent_timestamp": m.sent_timestamp,
        "first_receive_timestamp": m.approximate_first_receive_timestamp,
        "group_id": m.group_id,
        "deduplication_id": m.deduplication_id,
        "sequence_number": m.sequence_number,
    }
