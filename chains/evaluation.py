"""Cluster evaluation: every policy rule in one place, each naming the policy it comes from.

Rules use the cluster's latest indicator year. Amounts are 万元; areas 亩 (1 亩 = 666.67 m²).
A rule whose data is missing has `passed=None` and says in Chinese what is missing.
`passed` compares with the creation (创建) threshold, `met_target` with the target (目标) value.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.cluster_models import Cluster, ClusterIndicator

SQM_PER_MU = 666.67
WAN = 10_000  # 元 per 万元
EPSILON = 1e-9  # absorbs float noise so a value exactly on the threshold passes

POLICY_CLUSTER = "山东省产业集聚区（海洋产业集聚区/产业集群）建设政策：创建条件"
POLICY_LAND = "山东省“亩产效益”评价改革政策：亩均效益评价"

CONCENTRATION_MIN = 50.0  # 主导产业收入占比 %, creation
CONCENTRATION_TARGET = 70.0
INVESTMENT_INTENSITY_MIN = 280.0  # 固定资产投资 万元/亩, creation
INVESTMENT_INTENSITY_TARGET = 350.0
TAX_PER_MU_MIN = 20.0  # 税收 万元/亩·年
TAX_PER_MU_TARGET = 30.0
REVENUE_PER_SQM_MIN = 4500.0  # 营业收入 元/m²
TAX_PER_SQM_MIN = 200.0  # 税收 元/m²
MAX_SAME_TYPE_PER_PROVINCE = 3
MAX_SAME_TYPE_PER_CITY = 1
# Only list punctuation separates industries: names such as 船舶及海洋工程装备 are one industry.
_INDUSTRY_SEPARATORS = re.compile(r"[、,，;；/／|]")


ALTERNATIVE_MET_NOTE = "同组替代指标已达标，本项不影响整体结论"
ALTERNATIVE_OPEN_NOTE = "同组指标任一达标即可"


@dataclass
class RuleResult:
    code: str
    name: str
    value: float | None
    unit: str
    threshold: float | None
    target: float | None
    passed: bool | None
    met_target: bool | None
    explanation: str
    source: str
    year: int | None = None
    alternative_of: str | None = None  # one of several alternatives; the named group rule decides

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evaluation:
    cluster_id: str
    cluster_name: str
    year: int | None
    rules: list[RuleResult]

    def rule(self, code: str) -> RuleResult:
        return next(r for r in self.rules if r.code == code)

    def alternative_note(self, rule: RuleResult) -> str:
        """For an alternative that fails, whether it decides the verdict (its group passes through another); '' else.

        Without it a page would show a red 未达标 row under a 全部达标 verdict and leave the reader to guess why."""
        if rule.alternative_of is None or rule.passed is not False:
            return ""
        if self.rule(rule.alternative_of).passed:
            return ALTERNATIVE_MET_NOTE
        return ALTERNATIVE_OPEN_NOTE

    @property
    def passed(self) -> bool | None:
        """All rules pass (None when any lacks data and none fails); alternatives count through their group."""
        values = [r.passed for r in self.rules if r.alternative_of is None]
        if False in values:
            return False
        return None if None in values else True


def _ge(value: float, threshold: float) -> bool:
    return value >= threshold - EPSILON * max(1.0, abs(threshold))


def _le(value: float, limit: float) -> bool:
    return value <= limit + EPSILON


def _fmt(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _ratio_rule(
    code: str,
    name: str,
    unit: str,
    value: float | None,
    threshold: float,
    target: float | None,
    source: str,
    year: int | None,
    missing: str,
    formula: str,
) -> RuleResult:
    if value is None:
        return RuleResult(code, name, None, unit, threshold, target, None, None, missing, source, year)
    passed = _ge(value, threshold)
    met = _ge(value, target) if target is not None else None
    verdict = "达到" if passed else "未达到"
    text = f"{formula} = {_fmt(value)} {unit}，{verdict}创建标准 {_fmt(threshold)} {unit}"
    if target is not None:
        text += f"；{'已' if met else '未'}达到目标值 {_fmt(target)} {unit}"
    return RuleResult(code, name, value, unit, threshold, target, passed, met, text + "。", source, year)


def _latest(session: Session, cluster_id: str) -> ClusterIndicator | None:
    return session.scalars(
        select(ClusterIndicator).where(ClusterIndicator.cluster_id == cluster_id).order_by(ClusterIndicator.year.desc())
    ).first()


def evaluate_cluster(session: Session, cluster_id: str, indicator: ClusterIndicator | None = None) -> Evaluation:
    """Evaluate one cluster against every rule; `indicator` (e.g. a what-if copy) replaces the latest year's."""
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise KeyError(f"cluster {cluster_id}")
    ind = indicator if indicator is not None else _latest(session, cluster_id)
    year = ind.year if ind else None
    no_ind = "缺少年度指标数据，无法评价。"
    area = cluster.area_mu
    rules: list[RuleResult] = []

    # 主导产业集聚度
    value = None
    missing = no_ind
    if ind is not None:
        if ind.revenue and ind.leading_revenue is not None:
            value = ind.leading_revenue / ind.revenue * 100
        else:
            missing = f"{year} 年缺少主营业务收入或主导产业收入数据，无法计算主导产业集聚度。"
    rules.append(
        _ratio_rule(
            "leading_concentration",
            "主导产业集聚度",
            "%",
            value,
            CONCENTRATION_MIN,
            CONCENTRATION_TARGET,
            POLICY_CLUSTER + "——主导产业收入占集聚区营业收入比重",
            year,
            missing,
            "主导产业收入 ÷ 主营业务收入",
        )
    )

    def per_mu(amount: float | None, label: str) -> tuple[float | None, str]:
        if ind is None:
            return None, no_ind
        if not area:
            return None, "缺少集聚区面积（亩），无法计算。"
        if amount is None:
            return None, f"{year} 年缺少{label}数据，无法计算。"
        return amount / area, ""

    value, missing = per_mu(ind.fixed_investment if ind else None, "固定资产投资")
    rules.append(
        _ratio_rule(
            "investment_intensity",
            "投资强度",
            "万元/亩",
            value,
            INVESTMENT_INTENSITY_MIN,
            INVESTMENT_INTENSITY_TARGET,
            POLICY_CLUSTER + "——单位面积固定资产投资强度",
            year,
            missing,
            "固定资产投资 ÷ 面积",
        )
    )
    value, missing = per_mu(ind.tax if ind else None, "税收")
    rules.append(
        _ratio_rule(
            "tax_per_mu",
            "亩均税收",
            "万元/亩·年",
            value,
            TAX_PER_MU_MIN,
            TAX_PER_MU_TARGET,
            POLICY_LAND + "——亩均税收",
            year,
            missing,
            "税收 ÷ 面积",
        )
    )
    value, missing = per_mu(ind.revenue if ind else None, "主营业务收入")
    value = None if value is None else value * WAN / SQM_PER_MU
    rules.append(
        _ratio_rule(
            "revenue_per_sqm",
            "单位面积营业收入",
            "元/m²",
            value,
            REVENUE_PER_SQM_MIN,
            None,
            POLICY_LAND + "——单位用地面积营业收入（亩均税收的替代指标）",
            year,
            missing,
            "营业收入 ÷ 用地面积（1亩=666.67m²）",
        )
    )
    value, missing = per_mu(ind.tax if ind else None, "税收")
    value = None if value is None else value * WAN / SQM_PER_MU
    rules.append(
        _ratio_rule(
            "tax_per_sqm",
            "单位面积税收",
            "元/m²",
            value,
            TAX_PER_SQM_MIN,
            None,
            POLICY_LAND + "——单位用地面积税收（亩均税收的替代指标）",
            year,
            missing,
            "税收 ÷ 用地面积（1亩=666.67m²）",
        )
    )

    # 亩均效益: any one of the three land-efficiency measures meeting its threshold is enough.
    alternatives = rules[-3:]
    for r in alternatives:
        r.alternative_of = "land_efficiency"
    outcomes = [r.passed for r in alternatives]
    if True in outcomes:
        ok = [r.name for r in alternatives if r.passed]
        rules.append(
            RuleResult(
                "land_efficiency",
                "亩均效益（任一达标）",
                None,
                "",
                None,
                None,
                True,
                None,
                f"{'、'.join(ok)}达标，满足亩均效益要求。",
                POLICY_LAND,
                year,
            )
        )
    elif False in outcomes:
        rules.append(
            RuleResult(
                "land_efficiency",
                "亩均效益（任一达标）",
                None,
                "",
                None,
                None,
                False,
                None,
                "亩均税收、单位面积营业收入、单位面积税收均未达标。",
                POLICY_LAND,
                year,
            )
        )
    else:
        rules.append(
            RuleResult(
                "land_efficiency",
                "亩均效益（任一达标）",
                None,
                "",
                None,
                None,
                None,
                None,
                "缺少面积、营业收入或税收数据，无法评价亩均效益。",
                POLICY_LAND,
                year,
            )
        )

    # One leading industry.
    leading = (cluster.leading_industry or "").strip()
    source = POLICY_CLUSTER + "——每个集聚区确定 1 个主导产业"
    if not leading:
        rules.append(
            RuleResult(
                "single_leading_industry",
                "主导产业唯一",
                None,
                "个",
                1,
                None,
                None,
                None,
                "未填写主导产业，无法评价。",
                source,
                None,
            )
        )
    else:
        parts = [p for p in _INDUSTRY_SEPARATORS.split(leading) if p.strip()]
        single = len(parts) == 1
        text = f"主导产业为“{leading}”，" + (
            "符合 1 个主导产业的要求。" if single else f"包含 {len(parts)} 个产业，超过 1 个。"
        )
        rules.append(
            RuleResult(
                "single_leading_industry",
                "主导产业唯一",
                float(len(parts)),
                "个",
                1,
                None,
                single,
                None,
                text,
                source,
                None,
            )
        )

    rules.append(_same_type_rule(session, cluster, "province", MAX_SAME_TYPE_PER_PROVINCE))
    rules.append(_same_type_rule(session, cluster, "city", MAX_SAME_TYPE_PER_CITY))
    return Evaluation(cluster.id, cluster.name, year, rules)


def _same_type_rule(session: Session, cluster: Cluster, scope: str, limit: int) -> RuleResult:
    """At most `limit` clusters of the same cluster_type in one province/city (this cluster included)."""
    label = "省" if scope == "province" else "市"
    code = f"same_type_per_{scope}"
    name = f"同类集聚区数量（每{label}）"
    source = POLICY_CLUSTER + f"——同一类型集聚区每{label}不超过 {limit} 个"
    place = getattr(cluster, scope)
    if not cluster.cluster_type or not place:
        what = "集聚区类型" if not cluster.cluster_type else ("所在省份" if scope == "province" else "所在城市")
        return RuleResult(code, name, None, "个", float(limit), None, None, None, f"未填写{what}，无法评价。", source)
    column = getattr(Cluster, scope)
    count = (
        session.scalar(
            select(func.count(Cluster.id)).where(Cluster.cluster_type == cluster.cluster_type, column == place)
        )
        or 0
    )
    ok = _le(count, limit)
    text = (
        f"{place}共有“{cluster.cluster_type}”类集聚区 {count} 个（含本集聚区），"
        + ("未超过" if ok else "超过")
        + f"上限 {limit} 个。"
    )
    return RuleResult(code, name, float(count), "个", float(limit), None, ok, None, text, source)
