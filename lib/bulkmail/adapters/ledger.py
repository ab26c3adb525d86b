"""The delivery ledger: who was sent what, and the batch claims that keep a message from sending twice.

Two tables:
- deliveries (campaign_id, email): the final outcome per recipient — sent | failed | skipped(reason).
- batches (campaign_id, batch_id): the claim on one SQS message's recipients, with a lease. A message
  redelivered while its claim is live waits; after the lease (a dead worker) it is claimed again; once
  done, a redelivery is acknowledged without sending.
Each email SES accepted is written down at once (`note_sent`: its row, `noted_by` the attempt's claim
token), so a worker that dies loses at most the one email between SES's answer and that write.
Recording the batch is then one transaction: the rows of the other outcomes, the counts (on one of the
campaign's counter shards, adapters/counters) and the batch's release, which adds the attempt's token
to the batch's `counted` set. A noted row is not written again (that cost two write units an email): it
is counted iff its token is in its batch's `counted` set, which changes only in the transaction that
counts it. Counters therefore always equal the ledger, and a retried record cannot count twice (each
row is conditional, the release on still holding the claim). A later attempt of the batch counts the
rows an attempt noted but did not record (their tokens are not in `counted`), adding them. A write the
database refuses for a while (conflicts, throttling) is tried again for as long as the invocation has
time, and the claim's lease is extended meanwhile: a send is never repeated because its record could
not be written.

At most one email per recipient per campaign family: a re-send (`resend_of`) takes each recipient over
from the original's failed row (`take_over_for_resend`), and a redriven dead letter takes its own row
back (`take_back_dead_letter`); the two are conditional writes on the same row, so only one of them
sends.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from bulkmail.adapters import counters, dynamo
from bulkmail.errors import BatchBusy
from bulkmail.models import COUNTER_FOR, BatchRecord, Claim, DeliveryStatus, Lease, Outcome
from bulkmail.ports import Cursor

logger = logging.getLogger(__name__)


class Ledger:
    def __init__(self, deliveries_table: str, batches_table: str, campaigns_table: str) -> None:
        self.deliveries_table = deliveries_table
        self.batches_table = batches_table
        self.campaigns_table = campaigns_table
        self.deliveries = dynamo.table(deliveries_table)
        self.batches = dynamo.table(batches_table)

    # --- claims ------------------------------------------------------------------------------
    def claim(self, campaign_id: str, batch_id: str, token: str, now: float, lease_seconds: int) -> BatchRecord:
        try:
            item = self.batches.update_item(
                Key={"campaign_id": campaign_id, "batch_id": batch_id},
                UpdateExpression="SET #s = :claimed, claim_token = :t, lease_until = :lease ADD attempts :one",
                ConditionExpression=(
                    "attribute_not_exists(batch_id) OR #s IN (:pending, :dead) "
                    "OR (#s = :claimed AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":claimed": "claimed",
                    ":pending": "pending",
                    ":dead": "dead",
                    ":t": token,
                    ":lease": int(now) + lease_seconds,
                    ":now": int(now),
                    ":one": 1,
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
            old = dynamo.from_wire(exc.response.get("Item")) or {}  # type: ignore[arg-type]  # stubs lack ALL_OLD's Item
            state = {"done": Claim.DONE, "parked": Claim.PARKED}.get(str(old.get("status")), Claim.BUSY)
            return BatchRecord(state, int(old.get("attempts", 0)))
        attempts = int(item["attempts"])
        counted = frozenset(str(t) for t in item.get("counted", ()))
        return BatchRecord(Claim.CLAIMED if attempts == 1 else Claim.RECLAIMED, attempts, counted)

    def recorded(self, campaign_id: str, emails: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The rows among these recipients that exist already: email → {dead_lettered, noted_by,
        batch_id, message_id, replaced_dead_letter}. A dead-lettered failure may be replaced by a
        redriven message's outcome; a row noted by an attempt whose token its batch has not counted was
        sent by an attempt that ended before recording it."""
        keys = [{"campaign_id": campaign_id, "email": e} for e in dict.fromkeys(emails)]
        projection = "email, dead_lettered, noted_by, batch_id, message_id, replaced_dead_letter"
        found = {item["email"]: item for item in dynamo.batch_get(self.deliveries_table, keys, projection=projection)}
        return found

    # --- holding on: retries and the lease -------------------------------------------------------
    def _persist(self, lease: Lease, write: Callable[[], Any]) -> Any:
        """Run a write; while DynamoDB refuses it with a retryable fault (botocore has already retried
        it), extend the lease and try again, for as long as the invocation has time."""
        attempt = 0
        while True:
            try:
                return write()
            except ClientError as exc:
                if not dynamo.is_retryable(exc) or lease.time_left() <= 0:
                    raise
                logger.warning(
                    "ledger write refused; trying again",
                    extra={"error": dynamo.error_code(exc), "attempt": attempt, "batch_id": lease.batch_id},
                )
            attempt += 1
            self.extend(lease)
            lease.sleep(min(dynamo.backoff(attempt), max(0.0, lease.time_left())))

    def extend(self, lease: Lease) -> None:
        """Push the claim's lease out again (so no other worker takes the batch while this one is
        still writing). A refused extension is not fatal: the lease outlasts the invocation anyway."""
        try:
            self.batches.update_item(
                Key={"campaign_id": lease.campaign_id, "batch_id": lease.batch_id},
                UpdateExpression="SET lease_until = :lease",
                ConditionExpression="claim_token = :t",
                ExpressionAttributeValues={":t": lease.token, ":lease": int(lease.wall_clock()) + lease.lease_seconds},
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                raise BatchBusy(f"batch {lease.batch_id} of {lease.campaign_id} was claimed by another worker") from exc
            if not dynamo.is_retryable(exc):
                raise
            logger.warning(
                "lease extension refused", extra={"error": dynamo.error_code(exc), "batch_id": lease.batch_id}
            )

    # --- recording -----------------------------------------------------------------------------
    def note_sent(self, lease: Lease, outcome: Outcome, now_iso: str) -> bool:
        """Write down at once that SES accepted this email (its row, noted by the attempt's token:
        counted when the batch's record adds that token). False when another batch has an outcome
        for this recipient already."""
        row: dict[str, Any] = {
            "campaign_id": lease.campaign_id,
            "email": outcome.email,
            "status": DeliveryStatus.SENT.value,
            "batch_id": lease.batch_id,
            "updated_at": now_iso,
            "noted_by": lease.token,
        }
        if outcome.message_id:
            row["message_id"] = outcome.message_id
        put: dict[str, Any] = {"Item": row, "ConditionExpression": "attribute_not_exists(email)"}
        if outcome.replaces_dead_letter:
            row["replaced_dead_letter"] = True
            put = {
                "Item": row,
                "ConditionExpression": "dead_lettered = :true",
                "ExpressionAttributeValues": {":true": True},
            }
        return dynamo.conditional_write(lambda: self._persist(lease, lambda: self.deliveries.put_item(**put)))

    def record(self, lease: Lease, outcomes: list[Outcome], *, batch_status: str, now_iso: str) -> list[Outcome]:
        """Write outcomes + counters + batch release in one transaction.

        `batch_status` is "done" when every recipient has an outcome; "pending" releases the batch for
        a later delivery (throttled); "dead" when its message is going to the dead-letter queue.
        Returns the outcomes that were recorded; ones another batch had recorded first are left out.
        """
        remaining = list(outcomes)
        # Each attempt returns, raises, or leaves out at least one conflicted outcome: this many at most.
        for _ in range(len(outcomes) + 1):
            written = [o for o in remaining if not o.noted]  # the outcomes with a row in the transaction
            try:
                items = self._transaction(lease, remaining, batch_status, now_iso)
                self._persist(lease, functools.partial(dynamo.client().transact_write_items, TransactItems=items))
                return remaining
            except ClientError as exc:
                if dynamo.error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = dynamo.cancellation_reasons(exc.response)
                if len(reasons) != len(written) + 2 or reasons[-2] == "ConditionalCheckFailed":
                    raise  # not our transaction's shape (the counter shard has no condition)
                if reasons[-1] == "ConditionalCheckFailed":
                    raise BatchBusy(
                        f"batch {lease.batch_id} of {lease.campaign_id} was claimed by another worker"
                    ) from exc
                # reasons: one per written outcome, then the counter shard's and the batch's (checked above)
                codes = zip(written, reasons, strict=False)
                conflicted = {o.email for o, code in codes if code == "ConditionalCheckFailed"}
                if not conflicted:
                    raise
                remaining = [o for o in remaining if o.email not in conflicted]
        raise AssertionError("unreachable: an attempt with no outcome left has nothing to conflict")

    def _transaction(
        self, lease: Lease, outcomes: list[Outcome], batch_status: str, now_iso: str
    ) -> list[dict[str, Any]]:
        campaign_id, batch_id = lease.campaign_id, lease.batch_id
        items: list[dict[str, Any]] = []
        counts = dict.fromkeys(COUNTER_FOR.values(), 0)
        new_rows = 0
        for o in outcomes:
            counts[COUNTER_FOR[o.status]] += 1
            if o.replaces_dead_letter:  # a redriven message: its failure row gives way to the new outcome
                counts["failed_count"] -= 1
            else:
                new_rows += 1
            if o.noted:  # written when SES accepted it: counted by adding its token to the batch's set
                continue
            row: dict[str, Any] = {
                "campaign_id": campaign_id,
                "email": o.email,
                "status": o.status.value,
                "batch_id": batch_id,
                "updated_at": now_iso,
            }
            if o.reason:
                row["reason"] = o.reason
            if o.message_id:
                row["message_id"] = o.message_id
            if o.dead_lettered:
                row["dead_lettered"] = True
            put: dict[str, Any] = {"TableName": self.deliveries_table, "Item": row}
            if o.replaces_dead_letter:
                put["ConditionExpression"] = "dead_lettered = :true"
                put["ExpressionAttributeValues"] = {":true": True}
            else:
                put["ConditionExpression"] = "attribute_not_exists(email)"
            items.append({"Put": put})
        # The counts go to one of the campaign's counter shards (adapters/counters), chosen by the batch.
        counts["processed_count"] = new_rows
        items.append(counters.add_entry(self.campaigns_table, campaign_id, counts, key=batch_id, now_iso=now_iso))
        # this attempt's token, and those of earlier attempts whose noted rows it counts
        tokens = {lease.token} | {o.noted_by for o in outcomes if o.noted and o.noted_by}
        items.append(self._give_up_claim(lease, batch_status, now_iso, " ADD counted :tokens", {":tokens": tokens}))
        return items

    def _give_up_claim(
        self, lease: Lease, status: str, now_iso: str, also: str, values: dict[str, Any]
    ) -> dict[str, Any]:
        """A transaction's Update leaving the batch in `status` and giving up this attempt's claim, only
        while it still holds it. `also`: more of the UpdateExpression (its `values`), before the REMOVE."""
        return {
            "Update": {
                "TableName": self.batches_table,
                "Key": {"campaign_id": lease.campaign_id, "batch_id": lease.batch_id},
                "UpdateExpression": f"SET #s = :s, updated_at = :now{also} REMOVE claim_token, lease_until",
                "ConditionExpression": "claim_token = :t",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":s": status, ":t": lease.token, ":now": now_iso, **values},
            }
        }

    # --- one email per recipient per campaign family ---------------------------------------------
    def take_over_for_resend(self, original_id: str, email: str, resend_id: str, lease: Lease) -> bool:
        """A re-send's claim on the original's failed row: False if a redrive of the original took it."""
        return self._take(
            lease,
            original_id,
            email,
            "SET resent_in = :me",
            "#s = :failed AND attribute_not_exists(redriven_by) "
            "AND (attribute_not_exists(resent_in) OR resent_in = :me)",
            {":me": resend_id, ":failed": DeliveryStatus.FAILED.value},
        )

    def take_back_dead_letter(self, campaign_id: str, email: str, lease: Lease) -> bool:
        """A redriven message's claim on its dead-lettered row: False if a re-send has taken it over."""
        return self._take(
            lease,
            campaign_id,
            email,
            "SET redriven_by = :me",
            "dead_lettered = :true AND attribute_not_exists(resent_in) "
            "AND (attribute_not_exists(redriven_by) OR redriven_by = :me)",
            {":me": lease.batch_id, ":true": True},
        )

    def _take(
        self, lease: Lease, campaign_id: str, email: str, update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        request: dict[str, Any] = {
            "Key": {"campaign_id": campaign_id, "email": email},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        if "#s" in condition:
            request["ExpressionAttributeNames"] = {"#s": "status"}
        return dynamo.conditional_write(lambda: self._persist(lease, lambda: self.deliveries.update_item(**request)))

    # --- parking (paused campaigns) --------------------------------------------------------------
    def park(self, lease: Lease, emails: list[str], now_iso: str) -> bool:
        """Keep a paused campaign's batch here instead of on the queue (where it would age towards the
        DLQ). Only while the campaign is still paused: False if it no longer is."""
        try:
            self._persist(
                lease,
                lambda: dynamo.client().transact_write_items(
                    TransactItems=[
                        {
                            "ConditionCheck": {
                                "TableName": self.campaigns_table,
                                "Key": {"campaign_id": lease.campaign_id},
                                "ConditionExpression": "#s = :paused",
                                "ExpressionAttributeNames": {"#s": "status"},
                                "ExpressionAttributeValues": {":paused": "paused"},
                            }
                        },
                        self._give_up_claim(lease, "parked", now_iso, ", emails = :e", {":e": emails}),
                    ]
                ),
            )
        except ClientError as exc:
            if dynamo.error_code(exc) == "TransactionCanceledException" and not dynamo.is_retryable(exc):
                return False
            raise
        return True

    def unpark_all(self, campaign_id: str, now_iso: str) -> list[tuple[str, list[str]]]:
        """Take every parked batch of a campaign back (each exactly once): [(batch_id, emails)]."""
        taken = []
        for item in dynamo.items("query", self.batches_table, **_in_status(campaign_id, "parked")):
            try:
                self.batches.update_item(
                    Key={"campaign_id": campaign_id, "batch_id": item["batch_id"]},
                    UpdateExpression="SET #s = :pending, updated_at = :now",
                    ConditionExpression="#s = :parked",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":pending": "pending", ":parked": "parked", ":now": now_iso},
                )
            except ClientError as exc:
                if dynamo.is_conditional_failure(exc):
                    continue  # another resumer took it
                raise
            taken.append((item["batch_id"], list(item["emails"])))
        return taken

    def release(self, lease: Lease, now_iso: str) -> None:
        """Give a claim back without recording anything."""
        self.record(lease, [], batch_status="pending", now_iso=now_iso)

    def failed_page(self, campaign_id: str, cursor: Cursor | None, limit: int) -> tuple[list[str], Cursor | None]:
        """A page of a campaign's failed recipients (the audience of a resend), and the next cursor."""
        failed = _in_status(campaign_id, DeliveryStatus.FAILED.value)
        rows, next_key = dynamo.page(self.deliveries.query, cursor, **failed, ProjectionExpression="email", Limit=limit)
        return [r["email"] for r in rows], next_key

    def count_failed(self, campaign_id: str) -> int:
        failed = _in_status(campaign_id, DeliveryStatus.FAILED.value)
        return sum(page["Count"] for page in dynamo.pages("query", self.deliveries_table, **failed, Select="COUNT"))

    def deliveries_for(self, campaign_id: str, status: DeliveryStatus | None = None) -> list[dict[str, Any]]:
        rows = dynamo.items(
            "query",
            self.deliveries_table,
            KeyConditionExpression="campaign_id = :c",
            ExpressionAttributeValues={":c": campaign_id},
        )
        return [r for r in rows if status is None or r["status"] == status.value]

    # --- feedback (bounces, complaints) --------------------------------------------------------
    def record_feedback(self, campaign_id: str, email: str, kind: str, now_iso: str, detail: dict[str, Any]) -> bool:
        """Note a bounce or complaint on the recipient's ledger row and count it on one of the
        campaign's counter shards (`bounced_count` / `complained_count`), in one transaction and
        once: a redelivered event, or one for a recipient the ledger does not have, changes nothing
        and returns False."""
        try:
            dynamo.client().transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.deliveries_table,
                            "Key": {"campaign_id": campaign_id, "email": email},
                            "UpdateExpression": "SET feedback = :kind, feedback_at = :now, feedback_detail = :detail",
                            "ConditionExpression": "attribute_exists(email) AND attribute_not_exists(feedback)",
                            "ExpressionAttributeValues": {
                                ":kind": kind,
                                ":now": now_iso,
                                ":detail": dynamo.to_dynamo(detail),
                            },
                        }
                    },
                    counters.add_entry(
                        self.campaigns_table, campaign_id, {f"{kind}_count": 1}, key=email, now_iso=now_iso
                    ),
                ]
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if any(code not in (None, "None", "ConditionalCheckFailed") for code in reasons):
                raise
            return False
        return True


def _in_status(campaign_id: str, status: str) -> dict[str, Any]:
    """A Query's arguments for a campaign's rows (deliveries or batches) in one status."""
    return {
        "KeyConditionExpression": "campaign_id = :c",
        "FilterExpression": "#s = :status",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":c": campaign_id, ":status": status},
    }
