"""A firm's registered contacts as links a phone can act on (lead and firm pages): tap to call, tap to write."""

from __future__ import annotations

import re

NUMBER_SEPARATORS = re.compile(r"[；;，,、/]")  # between the several numbers of one 电话 cell (spaces group digits)
DIALABLE = re.compile(r"[^\d+]")
MIN_DIGITS = 5  # shorter is not a number to call (a stray extension or a typo)
MAX_DIGITS = 15  # the longest international number (E.164); more is several numbers run together


def tel_href(phone: str | None) -> str:
    """`tel:` link of the first number in a 电话 cell ("0532-88886666；0532-88886667" → "tel:053288886666"), built
    from its digits and a leading + only; "" when the cell holds no callable number."""
    first = NUMBER_SEPARATORS.split((phone or "").strip(), maxsplit=1)[0]
    plus = "+" if first.startswith("+") else ""
    digits = DIALABLE.sub("", first).replace("+", "")
    return f"tel:{plus}{digits}" if MIN_DIGITS <= len(digits) <= MAX_DIGITS else ""
