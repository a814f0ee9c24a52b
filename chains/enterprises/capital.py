"""Registered capital (注册资本) as found in registry exports: amounts in 万 or 元, currencies, CNY equivalents.

Every parser accepts arbitrary input and returns None/'' instead of raising."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from chains.enterprises.normalize import clean_text

CNY = "CNY"
# Fixed conversion rates to CNY, used only to compare capitals in range filters (approximate 2024 averages;
# deliberately constant so that imports are reproducible).
FX_TO_CNY = {
    "CNY": 1.0,
    "USD": 7.1,
    "EUR": 7.8,
    "HKD": 0.91,
    "JPY": 0.048,
    "GBP": 9.1,
    "CHF": 8.1,
    "SGD": 5.3,
    "KRW": 0.0053,
    "AUD": 4.7,
    "CAD": 5.2,
    "TWD": 0.22,
    "MOP": 0.88,
}
_CURRENCY_WORDS = (
    ("人民币", "CNY"),
    ("rmb", "CNY"),
    ("cny", "CNY"),
    ("港币", "HKD"),
    ("港元", "HKD"),
    ("hkd", "HKD"),
    ("美元", "USD"),
    ("美金", "USD"),
    ("usd", "USD"),
    ("us$", "USD"),
    ("欧元", "EUR"),
    ("eur", "EUR"),
    ("日元", "JPY"),
    ("jpy", "JPY"),
    ("英镑", "GBP"),
    ("gbp", "GBP"),
    ("瑞士法郎", "CHF"),
    ("chf", "CHF"),
    ("新加坡元", "SGD"),
    ("新币", "SGD"),
    ("sgd", "SGD"),
    ("韩元", "KRW"),
    ("krw", "KRW"),
    ("澳元", "AUD"),
    ("澳大利亚元", "AUD"),
    ("aud", "AUD"),
    ("加元", "CAD"),
    ("加拿大元", "CAD"),
    ("cad", "CAD"),
    ("新台币", "TWD"),
    ("台币", "TWD"),
    ("twd", "TWD"),
    ("澳门元", "MOP"),
    ("mop", "MOP"),
)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
UNIT_WAN = "万"
UNIT_YUAN = "元"
MAX_CAPITAL_WAN = 1e12  # beyond any real registered capital; larger numbers are input errors


@dataclass(frozen=True)
class Capital:
    amount_wan: float  # in 万 of `currency`
    currency: str  # ISO code
    wan_cny: float  # 万元 CNY at FX_TO_CNY


def parse_amount_wan(value: object, default_unit: str = UNIT_WAN) -> tuple[float, str] | None:
    """(amount in 万, currency) from '500万元人民币', '1.2亿元', '100万美元', '5,000,000元', 500 …; None if unreadable.

    A bare number is in `default_unit` (万 unless a header says 元) and in CNY.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        number, text = float(value), ""
    else:
        text = unicodedata.normalize("NFKC", clean_text(value)).lower().replace(",", "").replace(" ", "")
        if not text or text in {"-", "--", "无", "不详", "未公开", "null", "none", "nan"}:
            return None
        match = _NUMBER.search(text)
        if not match:
            return None
        try:
            number = float(match.group())
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        text = text[: match.start()] + " " + text[match.end() :]
    currency = CNY
    for word, code in _CURRENCY_WORDS:
        if word in text:
            currency = code
            break
    if "亿" in text:
        amount = number * 10_000
    elif "万" in text:
        amount = number
    elif "元" in text or "圆" in text:
        amount = number / 10_000
    else:
        amount = number if default_unit == UNIT_WAN else number / 10_000
    if amount < 0 or amount > MAX_CAPITAL_WAN:
        return None
    return round(amount, 6), currency


def parse_capital(value: object, default_unit: str = UNIT_WAN) -> Capital | None:
    """Registered capital with its CNY equivalent in 万元; None if unreadable."""
    parsed = parse_amount_wan(value, default_unit)
    if parsed is None:
        return None
    amount, currency = parsed
    return Capital(amount, currency, round(amount * FX_TO_CNY[currency], 6))


def format_capital(amount_wan: float | None, currency: str) -> str:
    """Inverse of parse_capital for exports: '500万元人民币', '100万美元'."""
    if amount_wan is None:
        return ""
    number = f"{amount_wan:.6f}".rstrip("0").rstrip(".")
    names = {
        "CNY": "元人民币",
        "USD": "美元",
        "EUR": "欧元",
        "HKD": "港元",
        "JPY": "日元",
        "GBP": "英镑",
        "CHF": "瑞士法郎",
        "SGD": "新加坡元",
        "KRW": "韩元",
        "AUD": "澳元",
        "CAD": "加元",
        "TWD": "新台币",
        "MOP": "澳门元",
    }
    return f"{number}万{names.get(currency or CNY, '元人民币')}"
