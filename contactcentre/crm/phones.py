"""Phone numbers in E.164, the one form the store keeps and looks up."""

from __future__ import annotations

import phonenumbers


class InvalidPhoneNumber(ValueError):
    pass


def to_e164(raw: str, default_region: str) -> str:
    """`01632 960101` (GB) -> `+441632960101`; raise InvalidPhoneNumber naming the input."""
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def caller_id_to_e164(raw: str, default_region: str) -> str | None:
    """The caller ID as the store keys it, or None for withheld and junk caller IDs."""
    if not raw or raw in ("unknown", "anonymous", "<unknown>"):
        return None
    try:
        return to_e164(raw, default_region)
    except InvalidPhoneNumber:
        return None
