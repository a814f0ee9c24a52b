"""Small YAML fixtures and firm factories shared by the chain, cluster, gap, list and evaluation tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

from chains.enterprise_models import Enterprise

# Tree: 3 top-level links over 2 levels, 6 leaves; tc-mid-a is a 卡脖子 link.
CHAIN_YAML = """\
id: tc
name: 测试产业链
sector: 测试
version: "2025.1"
description: 测试用产业链
source: 测试数据
links:
  - id: tc-up
    name: 原材料
    stage: 上游
    industry_codes: ["C26"]
    children:
      - id: tc-up-a
        name: 正极材料
        keywords: [正极, 三元材料]
        industry_codes: ["C3985"]
      - id: tc-up-b
        name: 负极材料
  - id: tc-mid
    name: 核心部件
    stage: 中游
    children:
      - id: tc-mid-a
        name: 电芯
        key_tech: true
        key_tech_note: 高镍电芯量产工艺
      - id: tc-mid-b
        name: 电池管理系统
      - id: tc-mid-c
        name: 电池包
  - id: tc-down
    name: 整车应用
    stage: 下游
supply:
  - {from: tc-up-a, to: tc-mid-a}
  - {from: tc-mid-a, to: tc-mid-c}
  - {from: tc-mid-c, to: tc-down}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_firms(session, count: int, revenue: float | None = 1000.0, prefix: str = "demo-f") -> list[Enterprise]:
    """`count` firms with external ids demo-f1…; committed."""
    firms = []
    for i in range(1, count + 1):
        firm = Enterprise(
            name=f"测试企业{i}",
            name_norm=f"测试企业{i}",
            external_id=f"{prefix}{i}",
            province="山东省",
            city="青岛市",
            revenue_wan=revenue,
            industry_name="测试行业",
        )
        session.add(firm)
        firms.append(firm)
    session.commit()
    return firms


def cluster_yaml(cid: str = "tcl", roster: str = "", extra: str = "", chains: str = "[tc]", **fields) -> str:
    """A cluster document; `roster` and `extra` are YAML fragments (already indented for the top level)."""
    base = {
        "name": "测试集聚区",
        "province": "山东省",
        "city": "青岛市",
        "district": "黄岛区",
        "leading_industry": "新能源汽车",
        "cluster_type": "新能源汽车",
        "area_mu": "1000",
        "data_note": "演示数据：测试",
    }
    base.update({k: str(v) for k, v in fields.items()})
    lines = [f"id: {cid}"] + [f"{k}: {v}" for k, v in base.items()] + [f"chains: {chains}"]
    text = "\n".join(lines) + "\n"
    if roster:
        text += "roster:\n" + textwrap.dedent(roster)
    if extra:
        text += textwrap.dedent(extra)
    return text
