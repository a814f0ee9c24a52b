"""Property-based conformance of the whole API document (schemathesis, in-process WSGI) with an admin token.

Every operation of /api/v1/openapi.json is called with generated data: no response may be a server error,
and every response must match its documented status code, content type and schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.worlds.api import make_token, seed_data

MAX_EXAMPLES = 4  # per operation; keeps the run short while touching every operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
CONFIG = {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}


@pytest.fixture
def admin_token(app):
    seed_data(app)
    return make_token(app, "admin")


def test_every_operation_conforms(app, admin_token):
    from webapp.services.match import wait_for_background

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=SchemathesisConfig.from_dict(CONFIG))
    headers = {"Authorization": f"Bearer {admin_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    try:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            call()
    finally:
        wait_for_background(app)  # a candidates call may have started a background index build
