"""A synthetic firm pool for the learning tests: industry firms, thin profiles, distractors and query variants."""

from __future__ import annotations

import random

from matching.engine import Document
from matching.profiles import enterprise_profile

INDUSTRIES = ["人工智能", "生物医药", "新能源汽车", "半导体", "工业机器人", "航空航天"]
VARIANTS = ["{}行业", "{}产业链", "{}技术", "{}应用", "{}解决方案", "{}服务"]
TRAIN_VARIANTS, TEST_VARIANTS = VARIANTS[:4], VARIANTS[4:]


def synthetic_pool(seed: int = 0):
    """Synthetic firms: per industry 2 firms whose scope names it and 4 thin profiles (product codes only),
    plus distractors that mention an industry word in an unrelated sense. Relevant = the 6 industry firms."""
    rng = random.Random(seed)
    docs, members = [], {}
    next_id = 1
    for ind in INDUSTRIES:
        ids = []
        for i in range(6):
            name = f"示例{ind[:2]}{i}号科技有限公司" if i < 2 else f"星河{rng.randint(100, 999)}有限公司"
            scope = (
                f"{ind}产品研发；{ind}系统" if i < 2 else f"型号X{rng.randint(1000, 9999)}；型号Y{rng.randint(10, 99)}"
            )
            docs.append(Document(next_id, name, enterprise_profile(name, scope)))
            ids.append(next_id)
            next_id += 1
        members[ind] = ids
        for j in range(5):  # distractors: the industry word, but in another trade
            name = f"干扰{ind[:2]}{j}贸易有限公司"
            scope = f"基于{ind}{VARIANTS[j % len(VARIANTS)][2:]}的饲料配方；{ind}{VARIANTS[(j + 1) % 6][2:]}培训；{ind}展会服务"
            docs.append(Document(next_id, name, enterprise_profile(name, scope)))
            next_id += 1
    return docs, members
