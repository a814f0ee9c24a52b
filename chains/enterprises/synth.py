"""Deterministic SYNTHETIC enterprises for demos and benchmarks (not real firms; every record says so).

Business scopes, products and industry codes are drawn per leaf link of the bundled chain maps
(data/chains/*.yaml); when none are present a small built-in set of links is used.
"""

from __future__ import annotations

import csv
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

SYNTHETIC_NOTE = "合成数据：程序生成，非真实企业"
SYNTHETIC_NAME_SUFFIX = "（合成）"
DEFAULT_CHAIN_DIR = Path(__file__).resolve().parents[2] / "data" / "chains"
CSV_HEADER = [
    "外部编号",
    "企业名称",
    "统一社会信用代码",
    "登记状态",
    "成立日期",
    "注册资本",
    "省份",
    "城市",
    "区县",
    "国标行业代码",
    "所属行业",
    "经营范围",
    "主营产品",
    "企业标签",
    "国家",
    "数据说明",
]

# (province, city, districts)
REGIONS = (
    ("山东省", "青岛市", ("黄岛区", "城阳区", "即墨区", "崂山区")),
    ("山东省", "烟台市", ("芝罘区", "福山区", "莱山区")),
    ("山东省", "济南市", ("历下区", "章丘区", "历城区")),
    ("江苏省", "苏州市", ("吴中区", "相城区", "昆山市", "张家港市")),
    ("江苏省", "常州市", ("武进区", "新北区", "金坛区")),
    ("江苏省", "南京市", ("江宁区", "浦口区", "栖霞区")),
    ("江苏省", "南通市", ("崇川区", "海门区", "启东市")),
    ("浙江省", "宁波市", ("北仑区", "鄞州区", "慈溪市")),
    ("浙江省", "杭州市", ("滨江区", "余杭区", "萧山区")),
    ("浙江省", "舟山市", ("定海区", "普陀区")),
    ("广东省", "深圳市", ("南山区", "宝安区", "龙岗区", "坪山区")),
    ("广东省", "广州市", ("番禺区", "黄埔区", "南沙区")),
    ("广东省", "佛山市", ("顺德区", "南海区")),
    ("广东省", "惠州市", ("惠城区", "惠阳区")),
    ("上海市", "上海市", ("浦东新区", "嘉定区", "闵行区", "临港新片区")),
    ("福建省", "宁德市", ("蕉城区", "福安市")),
    ("福建省", "厦门市", ("海沧区", "集美区")),
    ("安徽省", "合肥市", ("蜀山区", "包河区", "肥西县")),
    ("湖北省", "武汉市", ("江夏区", "蔡甸区", "东西湖区")),
    ("湖南省", "长沙市", ("雨花区", "望城区")),
    ("四川省", "成都市", ("龙泉驿区", "双流区", "新都区")),
    ("四川省", "宜宾市", ("翠屏区", "叙州区")),
    ("重庆市", "重庆市", ("两江新区", "璧山区", "渝北区")),
    ("天津市", "天津市", ("滨海新区", "西青区")),
    ("辽宁省", "大连市", ("甘井子区", "金州区", "旅顺口区")),
    ("河北省", "唐山市", ("曹妃甸区", "路北区")),
    ("江西省", "宜春市", ("袁州区", "宜丰县")),
    ("陕西省", "西安市", ("长安区", "高陵区")),
    ("北京市", "北京市", ("海淀区", "亦庄经济技术开发区", "顺义区")),
    ("河南省", "郑州市", ("中牟县", "金水区")),
)
TRADE_NAME_CHARS = "华中兴达盛通科宏博瑞源恒泰嘉信安和德新海联创远航鼎佳汇丰明睿晟辰鑫正弘益启拓智云峰"
ENTITY_FORMS = (("有限公司", 6), ("股份有限公司", 2), ("科技有限公司", 3), ("集团有限公司", 1))
STATUS_WEIGHTS = (("存续", 80), ("在业", 8), ("注销", 5), ("吊销", 3), ("迁出", 2), ("停业", 1), ("清算", 1))
TAG_CHOICES = (
    ("高新技术企业", 0.30),
    ("科技型中小企业", 0.20),
    ('专精特新"小巨人"', 0.05),
    ("专精特新", 0.12),
    ("瞪羚", 0.04),
    ("上市", 0.03),
    ("单项冠军", 0.01),
    ("外资", 0.05),
)
GENERIC_SCOPE = (
    "技术开发、技术咨询、技术服务",
    "货物进出口、技术进出口",
    "销售自产产品",
    "机械设备租赁",
    "软件开发",
    "普通货物仓储服务",
)
CAPITAL_FORMS = (("{}万元人民币", 0.75), ("{}万美元", 0.1), ("{}万欧元", 0.03), ("{}万港元", 0.04), ("{}亿元", 0.08))
FOUNDED_YEARS = (1990, 2024)


@dataclass(frozen=True)
class LinkProfile:
    link_id: str
    name: str
    keywords: tuple[str, ...]
    products: tuple[str, ...]
    industry_codes: tuple[str, ...]


FALLBACK_LINKS = (
    LinkProfile(
        "fallback-battery", "动力电池", ("动力电池", "锂离子电池", "电芯"), ("磷酸铁锂电池", "三元锂电池"), ("C3841",)
    ),
    LinkProfile("fallback-motor", "驱动电机", ("驱动电机", "电机控制器"), ("永磁同步电机",), ("C3812",)),
    LinkProfile("fallback-ship", "船舶配套", ("船用设备", "船舶配套"), ("船用锚绞机", "甲板机械"), ("C3734",)),
    LinkProfile("fallback-software", "工业软件", ("工业软件", "嵌入式软件"), ("车载操作系统",), ("I6513",)),
)


def _leaves(links: Any) -> list[dict[str, Any]]:
    """The leaf links of a chain YAML's `links` (parsed YAML: anything)."""
    found: list[dict[str, Any]] = []
    for link in links or []:
        if not isinstance(link, dict):
            continue
        children = link.get("children") or []
        found.extend(_leaves(children) if children else [link])
    return found


def load_link_profiles(chain_dir: str | os.PathLike[str] | None = None) -> list[LinkProfile]:
    """Leaf links of every chain YAML in `chain_dir` (sorted by file); the fallback set if none can be read."""
    directory = Path(chain_dir) if chain_dir else DEFAULT_CHAIN_DIR
    profiles = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue  # a file being written by someone else, or broken: skip it
        for link in _leaves(data.get("links") if isinstance(data, dict) else []):
            keywords = tuple(str(k) for k in link.get("keywords") or ())
            products = tuple(str(p) for p in link.get("products") or ())
            codes = tuple(str(c) for c in link.get("industry_codes") or ())
            if link.get("id") and link.get("name") and (keywords or products):
                profiles.append(LinkProfile(str(link["id"]), str(link["name"]), keywords, products, codes))
    return profiles or list(FALLBACK_LINKS)


def _weighted(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    values, weights = zip(*choices)
    choice: str = rng.choices(values, weights=weights, k=1)[0]
    return choice


def _capital(rng: random.Random) -> str:
    form = _weighted(rng, CAPITAL_FORMS)
    if "亿" in form:
        return form.format(rng.choice((1, 1.2, 2, 3.5, 5, 10, 20)))
    return form.format(rng.choice((50, 100, 200, 300, 500, 800, 1000, 2000, 3000, 5000, 10000)))


def generate(n: int, seed: int = 0, chain_dir: str | os.PathLike[str] | None = None) -> list[dict[str, str]]:
    """`n` synthetic enterprise rows (Chinese headers, as in demo_firms.csv); same seed and chain files → same rows."""
    rng = random.Random(seed)
    links = load_link_profiles(chain_dir)
    rows = []
    for i in range(n):
        province, city, districts = rng.choice(REGIONS)
        link = rng.choice(links)
        word = rng.choice(link.keywords or (link.name,))
        trade_name = "".join(rng.sample(TRADE_NAME_CHARS, 2))
        name = f"{city.rstrip('市')}{trade_name}{word}{_weighted(rng, ENTITY_FORMS)}{SYNTHETIC_NAME_SUFFIX}"
        products = rng.sample(link.products, min(len(link.products), rng.randint(1, 3))) if link.products else [word]
        scope_terms = rng.sample(link.keywords, min(len(link.keywords), 3)) if link.keywords else [link.name]
        scope = (
            "；".join([f"{'、'.join(scope_terms)}的研发、生产和销售", *rng.sample(GENERIC_SCOPE, 2)])
            + "。（依法须经批准的项目，经相关部门批准后方可开展经营活动）"
        )
        tags = [tag for tag, p in TAG_CHOICES if rng.random() < p]
        year = rng.randint(*FOUNDED_YEARS)
        rows.append(
            {
                "外部编号": f"synth-{seed}-{i:07d}",
                "企业名称": name,
                "统一社会信用代码": "",  # never generated: a made-up code could belong to a real firm
                "登记状态": _weighted(rng, STATUS_WEIGHTS),
                "成立日期": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "注册资本": _capital(rng),
                "省份": province,
                "城市": city,
                "区县": rng.choice(districts),
                "国标行业代码": rng.choice(link.industry_codes) if link.industry_codes else "",
                "所属行业": link.name,
                "经营范围": scope,
                "主营产品": "、".join(products),
                "企业标签": "；".join(tags),
                "国家": "中国",
                "数据说明": SYNTHETIC_NOTE,
            }
        )
    return rows


def write_csv(rows: list[dict[str, str]], path: str | os.PathLike[str]) -> None:
    """UTF-8 CSV in the demo_firms.csv header format."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_HEADER)
        writer.writeheader()
        writer.writerows(rows)
