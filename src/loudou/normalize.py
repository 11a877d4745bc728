"""Normalise phones and e-mail addresses on write so duplicates and search match."""

from __future__ import annotations

from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from loudou.errors import ValidationFailed

DEFAULT_REGION = "CN"


def normalize_phone(value: str | None, field: str = "phone", region: str = DEFAULT_REGION) -> str | None:
    """Return E.164 (+8613812345678); numbers without a country code are read as Chinese."""
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed(f"{field}: {value!r} is not a phone number", field=field) from exc
    if not phonenumbers.is_possible_number(number):
        raise ValidationFailed(f"{field}: {value!r} is not a valid phone number", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(value: str | None, field: str = "email") -> str | None:
    if value is None or not value.strip():
        return None
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(f"{field}: {exc}", field=field) from exc
    return result.normalized.lower()


def clean_party_fields(values: dict[str, Any]) -> dict[str, Any]:
    """Trim the name and normalise phone and e-mail of a company or contact, in place."""
    if "name" in values:
        if values["name"] is None or not values["name"].strip():
            raise ValidationFailed("name cannot be empty", field="name")
        values["name"] = values["name"].strip()
    if "phone" in values:
        values["phone"] = normalize_phone(values["phone"])
    if "email" in values:
        values["email"] = normalize_email(values["email"])
    return values
