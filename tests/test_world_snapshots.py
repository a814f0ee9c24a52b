"""Copies of a session-built world (tests/worlds/snapshots.py): a test's writes stay in its copy, new rows get fresh ids.

The two tests run in order (one module, one xdist worker): the second sees the world as built, whatever the first did.
"""

from __future__ import annotations

from sqlalchemy import func, select

from chains.enterprise_models import Enterprise
from tests.worlds.clusters import build_app_world
from tests.worlds.world import synthetic_firm
from webapp.extensions import db

RENAMED = "改名后的企业"


def _all_ids(world: dict) -> list[int]:
    return [*world["local"], world["unplaced"], world["candidate"], world["other"]]


def test_a_copy_takes_writes_and_hands_out_fresh_ids(app, world_copy):
    world = world_copy(build_app_world)
    with app.app_context():
        db.session.get(Enterprise, world["local"][0]).name = RENAMED
        db.session.delete(db.session.get(Enterprise, world["candidate"]))
        firm = synthetic_firm(db.session, "新增企业", "test-new")
        db.session.commit()
        assert firm.id > max(_all_ids(world))
    world["local"].clear()  # what the builder returned is the test's own copy too


def test_the_next_copy_is_the_world_as_built(app, world_copy):
    world = world_copy(build_app_world)
    assert len(world["local"]) == 3
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Enterprise)) == len(_all_ids(world))
        assert db.session.get(Enterprise, world["local"][0]).name != RENAMED
        assert db.session.get(Enterprise, world["candidate"]) is not None
