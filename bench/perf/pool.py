"""Synthetic pools (chains.enterprises.synth), their profile texts, link queries and filter id sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from chains.enterprises import synth
from matching.profiles import enterprise_profile, link_query
from matching.vectors.filters import FieldFilter, condition

ACTIVE = ("存续", "在业")
LOCAL_FIRMS = 50  # roster of a cluster excluded from its candidates


@dataclass
class Pool:
    """n synthetic firms: ids 0..n-1, profile texts, names, products, province / city / status per firm (`active`:
    the status is 存续 or 在业)."""

    texts: list[str]
    names: list[str]
    products: list[str]
    provinces: np.ndarray
    cities: np.ndarray
    active: np.ndarray
    statuses: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def documents(self, with_fields: bool = False):
        """The engine's documents; `with_fields`: carrying province / city / status as the product's do for a vector
        backend that stores fields (webapp.services.match.filters.vector_fields; Milvus)."""
        from matching.engine import Document

        if not with_fields:
            return [Document(i, self.names[i], self.texts[i], self.products[i]) for i in range(len(self.texts))]
        return [
            Document(
                i,
                self.names[i],
                self.texts[i],
                self.products[i],
                fields={"province": str(p), "city": str(c), "status": str(s)},
            )
            for i, (p, c, s) in enumerate(zip(self.provinces, self.cities, self.statuses))
        ]


def synthetic_pool(n: int, seed: int = 1) -> Pool:
    """Profile texts of `n` synthetic firms, generated in slices to keep peak memory low."""
    texts, names, products, provinces, cities, statuses = [], [], [], [], [], []
    step = 100_000
    for part, start in enumerate(range(0, n, step)):
        for r in synth.generate(min(step, n - start), seed * 1000 + part):
            texts.append(enterprise_profile(r["企业名称"], r["经营范围"], r["主营产品"], r["所属行业"]))
            names.append(r["企业名称"])
            products.append(r["主营产品"])
            provinces.append(r["省份"])
            cities.append(r["城市"])
            statuses.append(r["登记状态"])
    status = np.asarray(statuses)
    return Pool(texts, names, products, np.asarray(provinces), np.asarray(cities), np.isin(status, ACTIVE), status)


def _walk(links, path, out):
    for link in links or []:
        if not isinstance(link, dict) or not link.get("name"):
            continue
        here = [*path, str(link["name"])]
        out.append(
            link_query(
                here,
                str(link.get("description") or ""),
                [str(k) for k in link.get("keywords") or ()],
                [str(s) for s in link.get("synonyms") or ()],
                [str(p) for p in link.get("products") or ()],
            )
        )
        _walk(link.get("children"), here, out)


def link_queries(limit: int | None = None, seed: int = 0) -> list[str]:
    """Query texts of every link of the bundled chain maps (as the product builds them), shuffled."""
    out: list[str] = []
    for path in sorted(Path(synth.DEFAULT_CHAIN_DIR).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        _walk(data.get("links"), [], out)
    rng = np.random.default_rng(seed)
    rng.shuffle(out)
    return out[:limit] if limit else out


def _filter_specs(pool: Pool, count: int, seed: int) -> list[tuple[str, str | None, np.ndarray]]:
    """Per query (label, the province or city it names or None, roster ids): the draws both renderings share."""
    rng = np.random.default_rng(seed)
    provinces = np.unique(pool.provinces)
    cities = np.unique(pool.cities)
    specs: list[tuple[str, str | None, np.ndarray]] = []
    for i in range(count):
        roster = rng.choice(len(pool), min(LOCAL_FIRMS, len(pool)), replace=False).astype(np.int64)
        mode = i % 4
        if mode == 0:
            specs.append(("none", None, np.zeros(0, np.int64)))
        elif mode == 1:
            specs.append(("province", str(rng.choice(provinces)), roster))
        elif mode == 2:
            specs.append(("other_city_active", str(rng.choice(cities)), roster))
        else:
            specs.append(("roster_excluded", None, roster))
    return specs


def filter_cases(pool: Pool, count: int, seed: int = 0) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
    """Per query a filter as the product resolves it: (label, allowed ids or None, excluded ids).

    Cycles through: none; one province, active only (allowed list, < half the pool) less a roster; firms outside
    the cluster's city and active only (excluded list: the complement is smaller); the roster of LOCAL_FIRMS local
    firms excluded.
    """
    ids = np.arange(len(pool), dtype=np.int64)
    cases: list[tuple[str, np.ndarray | None, np.ndarray]] = []
    for label, place, roster in _filter_specs(pool, count, seed):
        if label == "province":
            cases.append((label, ids[(pool.provinces == place) & pool.active], roster))
        elif label == "other_city_active":
            cases.append((label, None, np.union1d(ids[(pool.cities == place) | ~pool.active], roster)))
        else:
            cases.append((label, None, roster))
    return cases


def field_filter_cases(pool: Pool, count: int, seed: int = 0) -> list[tuple[str, FieldFilter | None, np.ndarray]]:
    """The same filters as `filter_cases` (same seed: same provinces, cities and rosters) as the web service gives
    them to a vector backend that stores fields (webapp.services.match.filters.field_filter): (label, `where` over
    province / city / status or None, excluded ids: the roster)."""
    active = condition("status", "in", ACTIVE)
    cases: list[tuple[str, FieldFilter | None, np.ndarray]] = []
    for label, place, roster in _filter_specs(pool, count, seed):
        if label == "province":
            cases.append((label, FieldFilter(((active,), (condition("province", "in", [place]),))), roster))
        elif label == "other_city_active":
            cases.append((label, FieldFilter(((active,), (condition("city", "ne", place),))), roster))
        else:
            cases.append((label, None, roster))
    return cases
