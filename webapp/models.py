"""Register every model on the shared metadata: `chains` models and each webapp feature's `models.py` (listed; a
test checks that every feature's models module is)."""

from __future__ import annotations

import chains.models  # noqa: F401
from webapp.auth import models as auth_models  # noqa: F401
from webapp.leads import models as leads_models  # noqa: F401
from webapp.services.audit import models as audit_models  # noqa: F401
from webapp.services.jobs import models as jobs_models  # noqa: F401
from webapp.suppliers import models as suppliers_models  # noqa: F401
