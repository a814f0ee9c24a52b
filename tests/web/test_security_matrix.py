"""Role × route matrix: every route of `app.url_map`, every role (and anonymous), against the expected status.

A route added without a rule in RULES fails `test_every_route_has_a_rule`. URL parameters are filled with real ids
of the seeded world (cluster A, where staff and manager are assigned); cross-cluster probes are in
test_cross_tenant.py. GET routes are checked for their status; POST/PUT/PATCH/DELETE routes are checked that
anonymous → login redirect (pages) or 401 (API), a wrong role → 403 with a valid CSRF token or API token, and the
right role is neither refused nor answered with a server error.
"""

from __future__ import annotations

import re

import pytest

from tests.worlds.security import BACKENDS, CHAIN, CLUSTER_A, LINK, ROLES, add_user, build, login
from webapp.extensions import db

STAFF_SIDE = ("admin", "staff", "manager")
IMPORTERS = ("admin", "staff")
ADMIN = ("admin",)
SPARE_LINK = "tc-coating"
EDITORS = ("admin", "manager")  # chain maps and clusters: admins and the managers of the cluster
FIRM = ("firm",)
LOGGED_IN = ROLES
OK = "ok"  # a write by an allowed role: not 401/403 and no server error (it may be a 4xx for the empty form)


def page(roles: tuple[str, ...], ok: int | str = 200) -> dict[str, int | str]:
    """A login-protected page or form action: anonymous → login redirect, other roles → 403."""
    return {"anonymous": 302, **{r: (ok if r in roles else 403) for r in ROLES}}


def api(roles: tuple[str, ...], ok: int | str = 200) -> dict[str, int | str]:
    """An API call with a Bearer token: no token → 401, other roles → 403."""
    return {"anonymous": 401, **{r: (ok if r in roles else 403) for r in ROLES}}


def public(ok: int = 200) -> dict[str, int]:
    return {r: ok for r in ("anonymous",) + ROLES}


# (rule, method) → expected status per role.
RULES: dict[tuple[str, str], dict[str, int | str]] = {
    ("/", "GET"): public(),
    ("/static/<path:filename>", "GET"): public(),
    ("/auth/login", "GET"): {"anonymous": 200, **{r: 302 for r in ROLES}},
    ("/auth/login", "POST"): {"anonymous": 401, **{r: 302 for r in ROLES}},  # wrong password / already logged in
    ("/auth/logout", "POST"): page(LOGGED_IN, 302),
    ("/auth/password", "GET"): page(LOGGED_IN),
    ("/auth/password", "POST"): page(LOGGED_IN, OK),  # the empty form: 400
    ("/auth/users/", "GET"): page(ADMIN),
    ("/auth/users/", "POST"): page(ADMIN, OK),
    ("/auth/users/<int:user_id>", "GET"): page(ADMIN),
    ("/auth/users/<int:user_id>/edit", "POST"): page(ADMIN, OK),
    ("/auth/users/<int:user_id>/password", "POST"): page(ADMIN, OK),
    ("/auth/users/<int:user_id>/disable", "POST"): page(ADMIN, OK),
    ("/auth/users/<int:user_id>/enable", "POST"): page(ADMIN, OK),
    ("/audit/", "GET"): page(ADMIN),
    # Cluster workspace: staff and managers of cluster A, admins everywhere; firms never.
    ("/clusters/", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/links/<link_key>", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists/<list_type>/export.csv", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists/<list_type>/history", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists/export.xlsx", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists/refresh", "POST"): page(STAFF_SIDE, OK),
    ("/clusters/<cluster_id>/chains/<chain_id>/lists/entries/<int:entry_id>/<action>", "POST"): page(STAFF_SIDE, OK),
    ("/clusters/<cluster_id>/placement", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/placement/status", "GET"): page(STAFF_SIDE),
    ("/clusters/<cluster_id>/placement/run", "POST"): page(STAFF_SIDE, OK),
    ("/clusters/<cluster_id>/placement/cancel", "POST"): page(STAFF_SIDE, OK),
    ("/clusters/<cluster_id>/placement/confirm", "POST"): page(STAFF_SIDE, OK),
    ("/candidates/<cluster_id>/<link_key>", "GET"): page(STAFF_SIDE),
    ("/candidates/<cluster_id>/<link_key>/export.xlsx", "GET"): page(STAFF_SIDE),
    ("/candidates/<cluster_id>/<link_key>/feedback", "POST"): page(STAFF_SIDE, OK),
    ("/firms/", "GET"): page(STAFF_SIDE),
    ("/firms/<int:enterprise_id>", "GET"): page(STAFF_SIDE),
    ("/leads/", "GET"): page(STAFF_SIDE),
    ("/leads/table", "GET"): page(STAFF_SIDE),
    ("/leads/export.xlsx", "GET"): page(STAFF_SIDE),
    ("/leads/<int:lead_id>", "GET"): page(STAFF_SIDE),
    ("/leads/create", "POST"): page(STAFF_SIDE, OK),
    ("/leads/<int:lead_id>/edit", "POST"): page(STAFF_SIDE, OK),
    ("/leads/<int:lead_id>/stage", "POST"): page(STAFF_SIDE, OK),
    ("/leads/<int:lead_id>/feedback", "POST"): page(STAFF_SIDE, OK),
    # Chain map maintenance (webapp/chainmaps/access.py): staff read the maps of their clusters; admins and the
    # managers of any cluster using a chain edit it; only admins restore an earlier version.
    ("/chains/", "GET"): page(STAFF_SIDE),
    ("/chains/<chain_id>/edit", "GET"): page(EDITORS),
    ("/chains/<chain_id>/links", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/links/<link_key>", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/move", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/fields", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/links/<link_key>/delete", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/edges", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/edges/delete", "POST"): page(EDITORS, OK),
    ("/chains/<chain_id>/versions", "GET"): page(STAFF_SIDE),
    ("/chains/<chain_id>/versions/<int:number>/restore", "POST"): page(ADMIN, OK),
    ("/chains/<chain_id>/export.yaml", "GET"): page(STAFF_SIDE),
    ("/chains/<chain_id>/upload", "POST"): page(EDITORS, OK),
    ("/chains/new", "POST"): page(ADMIN, OK),
    # Clusters in the browser: admins create; admins and the cluster's managers edit fields, indicators, roster.
    ("/clusters/new", "GET"): page(ADMIN),
    ("/clusters/new", "POST"): page(ADMIN, OK),
    ("/clusters/<cluster_id>/edit", "GET"): page(EDITORS),
    ("/clusters/<cluster_id>/edit", "POST"): page(EDITORS, OK),
    ("/clusters/<cluster_id>/indicators", "POST"): page(EDITORS, OK),
    ("/clusters/<cluster_id>/roster/search", "GET"): page(EDITORS),
    ("/clusters/<cluster_id>/roster", "POST"): page(EDITORS, OK),
    ("/clusters/<cluster_id>/roster/<int:enterprise_id>/remove", "POST"): page(EDITORS, OK),
    ("/clusters/<cluster_id>/chains/<chain_id>/review", "POST"): page(EDITORS, OK),
    ("/leads/<int:lead_id>/progress", "POST"): page(STAFF_SIDE, OK),
    # Shared target register (首报首谈): every staff-side role sees it; only administrators decide coordination.
    ("/leads/register", "GET"): page(STAFF_SIDE),
    ("/leads/projects", "GET"): page(STAFF_SIDE),
    ("/reports/<cluster_id>/<chain_id>.docx", "GET"): page(STAFF_SIDE),
    ("/leads/kpi", "GET"): page(STAFF_SIDE),
    ("/leads/kpi.xlsx", "GET"): page(STAFF_SIDE),
    ("/leads/<int:lead_id>/project", "POST"): page(STAFF_SIDE, OK),
    ("/leads/<int:lead_id>/project/funds", "POST"): page(STAFF_SIDE, OK),
    ("/leads/coordination", "GET"): page(STAFF_SIDE),
    ("/leads/<int:lead_id>/coordination", "POST"): page(STAFF_SIDE, OK),
    ("/leads/coordination/<int:request_id>/decide", "POST"): page(ADMIN, OK),
    # File imports: admins and 招商人员.
    ("/imports/", "GET"): page(IMPORTERS),
    ("/imports/template.xlsx", "GET"): page(IMPORTERS),
    ("/imports/", "POST"): page(IMPORTERS, OK),
    ("/imports/<int:job_id>", "GET"): page(IMPORTERS),
    ("/imports/<int:job_id>/status", "GET"): page(IMPORTERS),
    ("/imports/<int:job_id>/report.csv", "GET"): page(IMPORTERS),
    ("/imports/<int:job_id>/cancel", "POST"): page(IMPORTERS, OK),
    ("/imports/<int:job_id>/retry", "POST"): page(IMPORTERS, OK),
    # Supplier search for chain-leader firms; staff handle the requests.
    ("/suppliers/", "GET"): page(FIRM),
    ("/suppliers/shortlist", "POST"): page(FIRM, OK),
    ("/suppliers/requests", "GET"): page(STAFF_SIDE),
    ("/suppliers/requests/new", "POST"): page(FIRM, OK),
    ("/suppliers/requests/<int:request_id>", "GET"): page(STAFF_SIDE + FIRM),  # the firm's own request
    ("/suppliers/requests/<int:request_id>/status", "POST"): page(STAFF_SIDE, OK),
    # API token page (every logged-in user manages their own tokens).
    ("/api/tokens/", "GET"): page(LOGGED_IN),
    ("/api/tokens/", "POST"): page(LOGGED_IN, OK),
    ("/api/tokens/<int:token_id>/revoke", "POST"): page(LOGGED_IN, OK),  # another user's token: 404
    ("/api/tokens/all", "GET"): page(ADMIN),
    ("/api/tokens/all/<int:token_id>/revoke", "POST"): page(ADMIN, OK),
    # JSON API with Bearer tokens.
    ("/api/v1/docs", "GET"): public(),
    ("/api/v1/openapi.json", "GET"): public(),
    ("/api/v1/me", "GET"): api(LOGGED_IN),
    ("/api/v1/chains", "GET"): api(STAFF_SIDE),
    ("/api/v1/chains", "POST"): api(ADMIN, OK),
    ("/api/v1/chains/<chain_id>", "GET"): api(STAFF_SIDE),
    ("/api/v1/chains/<chain_id>", "PUT"): api(ADMIN, OK),
    ("/api/v1/chains/<chain_id>/links", "GET"): api(STAFF_SIDE),
    ("/api/v1/chains/<chain_id>/links/<link_id>", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>/chains/<chain_id>/lists", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>/chains/<chain_id>/lists/refresh", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/clusters/<cluster_id>/evaluation", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>/gaps", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>/feedback", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/clusters/<cluster_id>/links/<link_key>/candidates", "GET"): api(STAFF_SIDE),
    ("/api/v1/enterprises", "GET"): api(STAFF_SIDE),
    ("/api/v1/enterprises/bulk", "POST"): api(IMPORTERS, OK),
    ("/api/v1/enterprises/<int:enterprise_id>", "GET"): api(STAFF_SIDE),
    ("/api/v1/enterprises/<int:enterprise_id>/look-alikes", "GET"): api(STAFF_SIDE),
    ("/api/v1/leads", "GET"): api(STAFF_SIDE),
    ("/api/v1/leads", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/leads/<int:lead_id>", "GET"): api(STAFF_SIDE),
    ("/api/v1/leads/<int:lead_id>", "PATCH"): api(STAFF_SIDE, OK),
    ("/api/v1/leads/<int:lead_id>", "DELETE"): api(ADMIN, OK),
    ("/api/v1/leads/<int:lead_id>/stage", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/leads/<int:lead_id>/progress", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/leads/<int:lead_id>/coordination", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/register", "GET"): api(STAFF_SIDE),
    ("/api/v1/clusters/<cluster_id>/kpi", "GET"): api(STAFF_SIDE),
    ("/api/v1/leads/<int:lead_id>/project", "GET"): api(STAFF_SIDE, 404),  # the seeded lead has no project
    ("/api/v1/leads/<int:lead_id>/project", "PUT"): api(STAFF_SIDE, OK),
    ("/api/v1/leads/<int:lead_id>/project/funds", "POST"): api(STAFF_SIDE, OK),
    ("/api/v1/coordination", "GET"): api(STAFF_SIDE),
    ("/api/v1/coordination/<int:request_id>/decision", "POST"): api(ADMIN, OK),
    ("/api/v1/requests", "GET"): api(LOGGED_IN),
    ("/api/v1/requests", "POST"): api(FIRM, OK),
    ("/api/v1/requests/<int:request_id>", "GET"): api(LOGGED_IN),  # firm: its own request
    ("/api/v1/requests/<int:request_id>/status", "POST"): api(STAFF_SIDE, OK),
}
# Endpoints that end the caller's sessions (all of them: logout bumps the user's session epoch) use a throwaway user.
SESSION_ENDING = {("/auth/logout", "POST")}


def _routes(app) -> set[tuple[str, str]]:
    return {(rule.rule, method) for rule in app.url_map.iter_rules() for method in rule.methods - {"HEAD", "OPTIONS"}}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    built, cleanup = build(request.param, tmp_path_factory.mktemp(f"matrix-{request.param}"))
    yield built
    cleanup()


def _url(world, rule: str) -> str:
    ids = world.ids
    values = {
        "cluster_id": CLUSTER_A,
        "chain_id": CHAIN,
        "link_key": LINK,
        "link_id": LINK,
        "lead_id": ids["lead_a"],
        "entry_id": ids["entry_a"],
        "list_type": ids["list_type_a"],
        "action": "pin",
        "job_id": ids["job"],
        "request_id": ids["request_a"],
        "enterprise_id": ids["candidate"],
        "user_id": ids["users"]["victim"],
        "number": 1,
        "token_id": ids["token_ids"]["victim"],
        "filename": "js/app.js",
    }
    if rule.startswith("/chains/") and rule.endswith("/links/<link_key>/delete"):
        values["link_key"] = SPARE_LINK  # chain map edits that take a link away aim at one no other check uses
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(values[m.group(1)]), rule)


def _request(world, role: str, rule: str, method: str):
    # DELETE removes its object: aim it at a lead kept for that.
    path = _url(world, rule.replace("<int:lead_id>", str(world.ids["lead_spare"])) if method == "DELETE" else rule)
    if path.startswith("/api/v1/"):
        kwargs = {} if method == "GET" else {"json": {}}
        return world.api(role, method, path, **kwargs)
    if method == "GET":
        return world.clients[role].get(path)
    if (rule, method) in SESSION_ENDING and role != "anonymous":
        client = login(world.app, add_user(world.app, role))
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
        return client.open(path, method=method, data={"csrf_token": token})
    data = {"username": f"{role}-user", "password": "wrong-password-123"} if rule == "/auth/login" else {}
    return world.post(role, path, data)


def test_every_route_has_a_rule(world):
    routes = _routes(world.app)
    missing = sorted(routes - set(RULES))
    stale = sorted(set(RULES) - routes)
    assert not missing, f"routes without an access rule in RULES: {missing}"
    assert not stale, f"rules for routes that no longer exist: {stale}"


@pytest.mark.parametrize("rule,method", sorted(RULES), ids=[f"{m} {r}" for r, m in sorted(RULES)])
def test_route_by_role(world, rule, method):
    expected = RULES[(rule, method)]
    got = {}
    for role in ("anonymous",) + ROLES:
        response = _request(world, role, rule, method)
        got[role] = response.status_code
        if expected[role] == OK:
            ok = response.status_code not in (401, 403) and response.status_code < 500
            got[role] = OK if ok else response.status_code
        if response.status_code == 302 and expected[role] == 302 and role == "anonymous" and rule != "/auth/login":
            assert "/auth/login" in response.headers["Location"]
    assert got == expected


def test_matrix_size(world):
    """The matrix covers every route for the four roles and anonymous (printed for the report)."""
    routes = _routes(world.app)
    print(f"security matrix: {len(routes)} routes × {len(ROLES) + 1} roles = {len(routes) * (len(ROLES) + 1)} checks")
    assert len(routes) == len(RULES)


def test_world_is_seeded(world):
    """Guard: the ids the matrix uses are real rows (otherwise 404s would hide missing checks)."""
    from webapp.leads.models import Lead

    with world.app.app_context():
        assert db.session.get(Lead, world.ids["lead_a"]).cluster_id == CLUSTER_A


# ----------------------------------------------------------------------------- CSRF and safe methods


def _allowed_role(rule: str, method: str) -> str:
    return next(r for r in ROLES if RULES[(rule, method)][r] in (OK, 200, 302))


def _ui_writes() -> list[tuple[str, str]]:
    return sorted(k for k in RULES if k[1] != "GET" and not k[0].startswith("/api/v1/"))


def test_every_form_action_rejects_a_missing_or_forged_csrf_token(world):
    for rule, method in _ui_writes():
        role = _allowed_role(rule, method)
        client = world.clients[role]
        path = _url(world, rule)
        missing = client.open(path, method=method, data={})
        forged = client.open(path, method=method, data={"csrf_token": "forged"})
        for response in (missing, forged):
            assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True), (
                rule,
                response.status_code,
            )


def test_htmx_requests_pass_with_the_csrf_header_and_fail_without(world):
    for rule, method in _ui_writes():
        if (rule, method) in SESSION_ENDING:
            continue
        role = _allowed_role(rule, method)
        client = world.clients[role]
        path = _url(world, rule)
        headers = {"HX-Request": "true"}
        refused = client.open(path, method=method, headers=headers)
        assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True), rule
        headers["X-CSRFToken"] = world.csrf(role)
        accepted = client.open(path, method=method, headers=headers)
        assert "CSRF" not in accepted.get_data(as_text=True) and accepted.status_code < 500, rule


def test_get_never_reaches_a_state_changing_action(world):
    """Every route that changes state answers GET with 405 (none of them also accepts GET)."""
    client = world.app.test_client()
    writes = {rule for rule, method in RULES if method != "GET"}
    reads = {rule for rule, method in RULES if method == "GET"}
    for rule in sorted(writes - reads):
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: "1" if "int:" in m.group(0) else "x", rule)
        assert client.get(path).status_code == 405, rule


def test_api_writes_refuse_the_browser_session(world):
    """The API is CSRF-exempt because writes need a Bearer token; a session cookie alone is refused."""
    client = world.clients["admin"]
    for rule, method in sorted(k for k in RULES if k[1] != "GET" and k[0].startswith("/api/v1/")):
        response = client.open(_url(world, rule), method=method, json={})
        assert response.status_code == 401, rule


# ----------------------------------------------------------------------------- errors reveal nothing


def test_server_errors_show_no_trace_or_sql_on_pages_or_api(database_url, tmp_path):
    """With the production settings (no TESTING, no debug) a failing query gives the Chinese 500 page / JSON error."""
    from sqlalchemy import text

    from tests.conftest import make_app

    app = make_app(database_url, tmp_path, TESTING=False)
    assert not app.debug and not app.config.get("PROPAGATE_EXCEPTIONS")

    def failing_query():
        db.session.execute(text("SELECT secret_column FROM no_such_table"))
        return "unreachable"

    app.add_url_rule("/boom", "boom", failing_query)
    app.add_url_rule("/api/v1/boom", "api_boom", failing_query)
    client = app.test_client()
    try:
        page = client.get("/boom")
        assert page.status_code == 500 and "服务器内部错误" in page.get_data(as_text=True)
        body = client.get("/api/v1/boom")
        assert body.status_code == 500 and body.get_json()["error"]["code"] == "internal_error"
        for response in (page, body):
            shown = response.get_data(as_text=True)
            for leak in ("Traceback", "no_such_table", "secret_column", "SELECT", "sqlalchemy", 'File "'):
                assert leak not in shown
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
