"""统一社会信用代码 (GB 32100-2015): normalisation and the check character."""

from __future__ import annotations

import re
import unicodedata

CODE_LENGTH = 18
# The 31 characters allowed by GB 32100-2015 (no I, O, S, V, Z), in value order 0..30.
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {ch: i for i, ch in enumerate(CHARSET)}
# Weight of position i is 3**i mod 31 (GB 32100-2015, 4.2).
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
MODULUS = 31

_SEPARATORS = re.compile(r"[\s\-_.·]+")


def normalize_credit_code(value: object) -> str:
    """Full-width to half-width, drop spaces and separators, upper-case; '' for empty input."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFKC", str(value))
    return _SEPARATORS.sub("", text).upper()


def check_character(body: str) -> str:
    """The 18th character for the first 17 characters `body` (ValueError if they are not allowed)."""
    if len(body) != CODE_LENGTH - 1:
        raise ValueError("credit code body must have 17 characters")
    try:
        total = sum(_VALUES[ch] * w for ch, w in zip(body, WEIGHTS))
    except KeyError as exc:
        raise ValueError(f"character {exc.args[0]!r} is not allowed in a credit code") from None
    return CHARSET[(MODULUS - total % MODULUS) % MODULUS]


def credit_code_error(code: str) -> str:
    """Why a normalised code is invalid, in Chinese; '' when it is valid."""
    if len(code) != CODE_LENGTH:
        return f"统一社会信用代码应为18位（实际{len(code)}位）"
    bad = [ch for ch in code if ch not in _VALUES]
    if bad:
        return f"统一社会信用代码含非法字符“{bad[0]}”"
    if check_character(code[:-1]) != code[-1]:
        return "统一社会信用代码校验位错误"
    return ""


def is_valid_credit_code(value: object) -> bool:
    """True when `value` (after normalisation) is a well-formed code with a correct check character."""
    return not credit_code_error(normalize_credit_code(value))
