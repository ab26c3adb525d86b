"""The DynamoDB stores keep the contract the in-memory fakes are held to (tests/store_contract.py)."""

from tests.store_contract import CHECKS


def test_the_dynamodb_stores_keep_the_contract_the_fakes_keep(harness) -> None:
    for check in CHECKS:
        check(harness.campaigns, harness.ledger)
