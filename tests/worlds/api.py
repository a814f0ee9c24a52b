"""Helpers shared by the API tests: seeded data (synthetic), users with API tokens, an API client wrapper."""

from __future__ import annotations

import uuid

import pytest

from tests.worlds.match_seed import CLUSTER_ID, seed
from webapp.extensions import db

OTHER_CLUSTER = "other-cluster"


def seed_data(app) -> dict[str, int]:
    """The matching-service test data (chain tev, cluster test-cluster, ~28 synthetic firms) and a second cluster."""
    from chains.cluster_models import Cluster, ClusterChain

    with app.app_context():
        ids = seed(db.session)
        other = Cluster(id=OTHER_CLUSTER, name="另一集聚区", province="山东省", city="青岛市", data_note="合成测试数据")
        other.chains = [ClusterChain(chain_id="tev", position=0)]
        db.session.add(other)
        db.session.commit()
        return ids


def make_token(app, role: str, clusters: tuple[str, ...] = (), enterprise_id: int | None = None) -> str:
    """A user of `role` with a fresh API token; returns the plaintext token."""
    from chains.cluster_models import Cluster
    from webapp.auth.models import User
    from webapp.auth.tokens import create_token

    with app.app_context():
        user = User(
            username=f"{role}-{uuid.uuid4().hex[:6]}", role=role, display_name=role, enterprise_id=enterprise_id
        )
        user.set_password("correct-horse-battery")
        for cid in clusters:
            user.clusters.append(db.session.get(Cluster, cid))
        db.session.add(user)
        db.session.flush()
        _, plaintext = create_token(db.session, user.id, "test")
        db.session.commit()
        return plaintext


class Api:
    """Test client calls with a Bearer token."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **kwargs):
        return self.client.get("/api/v1" + path, headers=self._headers(), **kwargs)

    def post(self, path: str, json=None, **kwargs):
        return self.client.post("/api/v1" + path, json=json, headers=self._headers(), **kwargs)

    def put(self, path: str, json=None):
        return self.client.put("/api/v1" + path, json=json, headers=self._headers())

    def patch(self, path: str, json=None):
        return self.client.patch("/api/v1" + path, json=json, headers=self._headers())

    def delete(self, path: str):
        return self.client.delete("/api/v1" + path, headers=self._headers())


CLUSTER = CLUSTER_ID


@pytest.fixture
def ids(world_copy):
    """A copy of the session's `seed_data` world: name → id."""
    return world_copy(seed_data)


@pytest.fixture
def admin(app, client, ids):
    return Api(client, make_token(app, "admin"))


@pytest.fixture
def staff(app, client, ids):
    return Api(client, make_token(app, "staff", clusters=(CLUSTER,)))


def assert_error(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["error"]["message"])  # Chinese message
    return body["error"]
