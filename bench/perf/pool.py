"""Synthetic pools (chains.enterprises.synth), their profile texts, link queries and filter id sets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from chains.enterprises import synth
from matching.profiles import enterprise_profile, link_query

ACTIVE = ("存续", "在业")
LOCAL_FIRMS = 50  # roster of a cluster excluded from its candidates


@dataclass
class Pool:
    """n synthetic firms: ids 0..n-1, profile texts, names, products, province / city / status per firm."""

    texts: list[str]
    names: list[str]
    products: list[str]
    provinces: np.ndarray
    cities: np.ndarray
    active: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def documents(self):
        from matching.engine import Document

        return [Document(i, self.names[i], self.texts[i], self.products[i]) for i in range(len(self.texts))]


def synthetic_pool(n: int, seed: int = 1) -> Pool:
    """Profile texts of `n` synthetic firms, generated in slices to keep peak memory low."""
    texts, names, products, provinces, cities, active = [], [], [], [], [], []
    step = 100_000
    for part, start in enumerate(range(0, n, step)):
        for r in synth.generate(min(step, n - start), seed * 1000 + part):
            texts.append(enterprise_profile(r["企业名称"], r["经营范围"], r["主营产品"], r["所属行业"]))
            names.append(r["企业名称"])
            products.append(r["主营产品"])
            provinces.append(r["省份"])
            cities.append(r["城市"])
            active.append(r["登记状态"] in ACTIVE)
    return Pool(texts, names, products, np.asarray(provinces), np.asarray(cities), np.asarray(active, bool))


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


def filter_cases(pool: Pool, count: int, seed: int = 0) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
    """Per query a filter as the product resolves it: (label, allowed ids or None, excluded ids).

    Cycles through: none; one province (allowed list, < half the pool); firms outside the cluster's city and
    active only (excluded list: the complement is smaller); the roster of LOCAL_FIRMS local firms excluded.
    """
    rng = np.random.default_rng(seed)
    provinces = np.unique(pool.provinces)
    cities = np.unique(pool.cities)
    ids = np.arange(len(pool), dtype=np.int64)
    cases = []
    for i in range(count):
        roster = rng.choice(len(pool), min(LOCAL_FIRMS, len(pool)), replace=False).astype(np.int64)
        mode = i % 4
        if mode == 0:
            cases.append(("none", None, np.zeros(0, np.int64)))
        elif mode == 1:
            province = rng.choice(provinces)
            cases.append(("province", ids[(pool.provinces == province) & pool.active], roster))
        elif mode == 2:
            city = rng.choice(cities)
            cases.append(("other_city_active", None, np.union1d(ids[(pool.cities == city) | ~pool.active], roster)))
        else:
            cases.append(("roster_excluded", None, roster))
    return cases
