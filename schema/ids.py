"""Opaque global ids: base64 of "Type:dbid", stable and accepted by Query.node."""

import base64
import binascii

_encoded: dict[tuple[str, int], str] = {}


def encode_id(type_name: str, db_id: int) -> str:
    # The same flags and environments recur on every page: remember their ids.
    key = (type_name, db_id)
    found = _encoded.get(key)
    if found is None:
        if len(_encoded) >= 100_000:
            _encoded.clear()
        found = _encoded[key] = _encode(type_name, db_id)
    return found


def _encode(type_name: str, db_id: int) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{db_id}".encode()).decode().rstrip("=")


def decode_id(global_id: str) -> tuple[str, int] | None:
    """(type name, database id), or None for anything that is not one of our ids.

    Only the exact text `encode_id` makes is accepted: one id per object, so "Segment:010",
    "Segment: 10", Unicode digits, padding or another base64 alphabet never name one.
    """
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
        type_name, _, db_id = raw.partition(":")
        value = int(db_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not type_name or value <= 0 or value >= 2**63:
        return None
    if _encode(type_name, value) != global_id:
        return None
    return type_name, value


def decode_id_of(global_id: str, type_name: str) -> int | None:
    decoded = decode_id(global_id)
    if decoded is None or decoded[0] != type_name:
        return None
    return decoded[1]
