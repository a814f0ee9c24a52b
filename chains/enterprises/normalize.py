"""Normalisation of enterprise fields as found in registry exports: names, status, dates, tags, industry codes
(GB/T 4754-2017), regions; registered capital is in chains/enterprises/capital.py. Every parser accepts arbitrary
input and returns None/'' instead of raising."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# ---------------------------------------------------------------- names

_SPACES = re.compile(r"\s+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_CJK_GAP = re.compile(r"(?<=[\u4e00-\u9fff）)])\s+(?=[\u4e00-\u9fff（(])")


def clean_text(value: object) -> str:
    """Trimmed text with runs of whitespace collapsed; '' for None/NaN."""
    if value is None:
        return ""
    if value.__class__ is not str:
        if isinstance(value, float):
            if not math.isfinite(value):
                return ""
            if value.is_integer():
                value = int(value)
        value = str(value)
    if "\x00" in value:
        value = value.replace("\x00", "")
    return " ".join(value.split())


def clean_name(value: object) -> str:
    """Display name: trimmed, whitespace between CJK characters removed, brackets of Chinese names full-width."""
    text = clean_text(value)
    if " " in text:
        text = _CJK_GAP.sub("", text)
    if _CJK.search(text):  # Chinese registry names use full-width brackets
        return text.replace("(", "（").replace(")", "）")
    return text


def name_key(value: object) -> str:
    """Matching key of a name: NFKC (full-width to half-width), no whitespace, lower-case, unified brackets."""
    text = unicodedata.normalize("NFKC", clean_text(value))
    text = text.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")")
    return _SPACES.sub("", text).lower()


# ---------------------------------------------------------------- status (登记状态)

STATUS_ACTIVE = "存续"
STATUS_OPERATING = "在业"
STATUS_MOVED_OUT = "迁出"
STATUS_CANCELLED = "注销"
STATUS_REVOKED = "吊销"
STATUS_SUSPENDED = "停业"
STATUS_LIQUIDATING = "清算"
STATUS_OTHER = "其他"
STATUSES = (
    STATUS_ACTIVE,
    STATUS_OPERATING,
    STATUS_MOVED_OUT,
    STATUS_CANCELLED,
    STATUS_REVOKED,
    STATUS_SUSPENDED,
    STATUS_LIQUIDATING,
    STATUS_OTHER,
)
# Firms in these states still operate and are valid investment targets.
ACTIVE_STATUSES = (STATUS_ACTIVE, STATUS_OPERATING)

# Checked in order: the first keyword found in the raw text decides ("吊销，未注销" is 吊销, not 注销).
_STATUS_KEYWORDS = (
    ("吊销", STATUS_REVOKED),
    ("注销", STATUS_CANCELLED),
    ("撤销", STATUS_CANCELLED),
    ("迁出", STATUS_MOVED_OUT),
    ("迁移", STATUS_MOVED_OUT),
    ("清算", STATUS_LIQUIDATING),
    ("停业", STATUS_SUSPENDED),
    ("歇业", STATUS_SUSPENDED),
    ("在业", STATUS_OPERATING),
    ("存续", STATUS_ACTIVE),
    ("在营", STATUS_ACTIVE),
    ("开业", STATUS_ACTIVE),
    ("在册", STATUS_ACTIVE),
    ("正常", STATUS_ACTIVE),
    ("登记成立", STATUS_ACTIVE),
    ("active", STATUS_ACTIVE),
)


def normalize_status(value: object) -> str:
    """One of STATUSES ('' when empty); unknown wording becomes 其他."""
    text = clean_text(value).lower()
    if not text:
        return ""
    for keyword, status in _STATUS_KEYWORDS:
        if keyword in text:
            return status
    return STATUS_OTHER


# ---------------------------------------------------------------- dates

EXCEL_EPOCH = date(1899, 12, 30)  # serial 1 = 1900-01-01, counting Excel's phantom 1900-02-29
MIN_YEAR, MAX_YEAR = 1800, 2100
_DATE_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})")
_DATE_YM = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*月?$")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def _make_date(year: int, month: int, day: int) -> date | None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(value: object) -> date | None:
    """2015-03-02, 2015/3/2, 2015.3.2, 2015年3月2日, 20150302, Excel serial numbers, date/datetime cells."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return _make_date(value.year, value.month, value.day)
    if isinstance(value, date):
        return _make_date(value.year, value.month, value.day)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        number = int(value)
        if 10_000_000 <= number <= 99_999_999:
            return _make_date(number // 10_000, number // 100 % 100, number % 100)
        if 1 <= number < 100_000:
            return EXCEL_EPOCH + timedelta(days=number)
        return None
    text = unicodedata.normalize("NFKC", clean_text(value))
    if not text:
        return None
    match = _DATE_YMD.search(text)
    if match:
        return _make_date(*(int(g) for g in match.groups()))
    match = _DATE_COMPACT.fullmatch(text.split(" ")[0])
    if match:
        return _make_date(*(int(g) for g in match.groups()))
    match = _DATE_YM.match(text)
    if match:
        return _make_date(int(match.group(1)), int(match.group(2)), 1)
    if re.fullmatch(r"\d{1,5}(\.\d+)?", text):
        return parse_date(float(text))
    return None


# ---------------------------------------------------------------- numbers

_INT = re.compile(r"\d+")


def parse_int(value: object) -> int | None:
    """Head counts like '123', '1,234人', 56.0; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**31 else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and 0 <= value < 2**31 else None
    text = unicodedata.normalize("NFKC", clean_text(value)).replace(",", "")
    match = _INT.search(text)
    if not match or len(match.group()) > 9:
        return None
    return int(match.group())


# ---------------------------------------------------------------- tags (企业标签)

TAG_MAX_LENGTH = 32
TAG_SEPARATORS = re.compile(r"[；;，,、|/\n\r\t]+")
TAG_LITTLE_GIANT = '专精特新"小巨人"'
_TAG_ALIASES = {
    "专精特新小巨人": TAG_LITTLE_GIANT,
    "小巨人": TAG_LITTLE_GIANT,
    "国家级专精特新小巨人": TAG_LITTLE_GIANT,
    "高新企业": "高新技术企业",
    "国家高新技术企业": "高新技术企业",
    "科技型中小企业": "科技型中小企业",
    "瞪羚企业": "瞪羚",
    "单项冠军企业": "单项冠军",
    "制造业单项冠军": "单项冠军",
    "上市公司": "上市",
    "外资企业": "外资",
}


def normalize_tag(value: str) -> str:
    text = clean_text(value)
    plain = re.sub(r"[\"“”'‘’「」《》\s]", "", text)
    if plain in _TAG_ALIASES:
        return _TAG_ALIASES[plain]
    if plain == "专精特新小巨人":
        return TAG_LITTLE_GIANT
    return text[:TAG_MAX_LENGTH]


def parse_tags(value: object) -> list[str]:
    """Tags split on ；;，,、|/ and newlines, normalised, de-duplicated in order."""
    text = clean_text(value)
    seen: dict[str, None] = {}
    for part in TAG_SEPARATORS.split(text):
        tag = normalize_tag(part)
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def parse_list(value: object) -> list[str]:
    """Former names and similar lists separated by ；; 、 or newlines."""
    text = clean_text(value)
    return [p.strip() for p in re.split(r"[；;、\n\r]+", text) if p.strip()]


# ---------------------------------------------------------------- industry codes (GB/T 4754-2017)

# Division (大类) ranges of each section (门类).
SECTION_DIVISIONS = {
    "A": (1, 5),
    "B": (6, 12),
    "C": (13, 43),
    "D": (44, 46),
    "E": (47, 50),
    "F": (51, 52),
    "G": (53, 60),
    "H": (61, 62),
    "I": (63, 65),
    "J": (66, 69),
    "K": (70, 70),
    "L": (71, 72),
    "M": (73, 75),
    "N": (76, 79),
    "O": (80, 82),
    "P": (83, 83),
    "Q": (84, 85),
    "R": (86, 90),
    "S": (91, 96),
    "T": (97, 97),
}
SECTION_NAMES = {
    "A": "农、林、牧、渔业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息传输、软件和信息技术服务业",
    "J": "金融业",
    "K": "房地产业",
    "L": "租赁和商务服务业",
    "M": "科学研究和技术服务业",
    "N": "水利、环境和公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育",
    "Q": "卫生和社会工作",
    "R": "文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
    "T": "国际组织",
}
_INDUSTRY_CODE = re.compile(
    r"(?<![A-Za-z0-9])([A-Ta-t])?\s*(\d{2}(?:\d{1,2})?)(?!\d)|(?<![A-Za-z0-9])([A-Ta-t])(?![A-Za-z0-9])"
)


@dataclass(frozen=True)
class IndustryCode:
    section: str  # 门类, e.g. "C"
    division: str = ""  # 大类, e.g. "38"
    group: str = ""  # 中类, e.g. "384"
    klass: str = ""  # 小类, e.g. "3841"

    @property
    def code(self) -> str:
        return self.section + (self.klass or self.group or self.division)


def section_of_division(division: int) -> str:
    for section, (low, high) in SECTION_DIVISIONS.items():
        if low <= division <= high:
            return section
    return ""


def parse_industry_code(value: object) -> IndustryCode | None:
    """'C3841', 'c 384', '3841', 'C38', 'C', 'C3841 锂离子电池制造' → 门类/大类/中类/小类; None if no valid code."""
    text = unicodedata.normalize("NFKC", clean_text(value))
    if not text:
        return None
    match = _INDUSTRY_CODE.search(text)
    if not match:
        return None
    if match.group(3):
        section = match.group(3).upper()
        return IndustryCode(section) if section in SECTION_DIVISIONS else None
    letter, digits = match.group(1), match.group(2)
    inferred = section_of_division(int(digits[:2]))
    if not inferred or (letter and letter.upper() != inferred):
        return None
    return IndustryCode(
        inferred, digits[:2], digits[:3] if len(digits) >= 3 else "", digits[:4] if len(digits) == 4 else ""
    )


def industry_name_from(value: object) -> str:
    """The text after a code, as in 'C3841 锂离子电池制造'."""
    text = clean_text(value)
    return re.sub(r"^[A-Za-z]?\s*\d{0,4}\s*[-—:：]?\s*", "", text).strip()


# ---------------------------------------------------------------- regions

PROVINCES = (
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
    "台湾省",
    "香港特别行政区",
    "澳门特别行政区",
)
_PROVINCE_SHORT = {}
for _full in PROVINCES:
    _short = re.sub(r"(省|市|壮族自治区|回族自治区|维吾尔自治区|自治区|特别行政区)$", "", _full)
    _PROVINCE_SHORT[_short] = _full
    _PROVINCE_SHORT[_full] = _full
_CITY_SUFFIXES = ("市", "州", "盟", "地区", "区", "县", "旗")


def normalize_province(value: object) -> str:
    """'广东' and '广东省' → '广东省'; unknown text is kept as written."""
    text = clean_text(value).replace(" ", "")
    return _PROVINCE_SHORT.get(text, text)


def normalize_city(value: object) -> str:
    """'深圳' → '深圳市'; names with an administrative suffix are kept."""
    text = clean_text(value).replace(" ", "")
    if text and re.fullmatch(r"[\u4e00-\u9fff]{2,4}", text) and not text.endswith(_CITY_SUFFIXES):
        return text + "市"
    return text
