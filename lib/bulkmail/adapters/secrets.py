"""Credentials from Secrets Manager, cached per container by Powertools (never logged, never queued)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities import parameters

from bulkmail.errors import SecretMalformed

SECRET_MAX_AGE_SECONDS = 300


def get_json_secret(name: str) -> dict[str, Any]:
    value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
    if not isinstance(value, dict):
        raise SecretMalformed(f"secret {name} must hold a JSON object")
    return value


def get_text_secret(name: str) -> str:
    value = parameters.get_secret(name, max_age=SECRET_MAX_AGE_SECONDS)
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str) or not value:
        raise SecretMalformed(f"secret {name} must hold a non-empty string")
    return value
