"""Cheaper log writes inside the background server, with the same stored ``log`` rows.

Prefect's ``POST /logs/`` handler (``prefect.server.models.logs.create_logs``) builds a second pydantic model per
record (``schemas.core.Log(**log.model_dump())``, for its uuid7 id) and stores a batch with one multi-row
``INSERT … VALUES`` that SQLAlchemy compiles anew for every batch size (a bind parameter per column per row) and
SQLite prepares anew: the same cost :mod:`.fastevents` removed from event writes. :func:`create_logs` stores the
same rows with one cached ``executemany`` statement: each record's null bytes stripped from its name and message
(as Prefect does: PostgreSQL refuses them), a uuid7 id per record (Prefect's own generator, so ids stay
time-ordered), ``created``/``updated`` from the table's defaults, all in the caller's transaction. The records are
published to the log stream as Prefect does when its stream publishing is on (off by default; the full ``Log``
models are then built, as Prefect builds them).

Installed by the background server (:mod:`.supervisor`) for the Prefect versions it was verified against
(:data:`aodncore.prefect.localserver.patchgate.VERIFIED_PREFECT_VERSIONS`; ``tests/test_localserver_fastlogs.py``
compares the stored rows and the logs read back through the API with Prefect's own writer); any other version
keeps Prefect's code and ``server.log`` says so. ``AODNCORE_SERVER_FAST_LOGS=0`` keeps Prefect's code too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_LOGS

__all__ = ["ENV_FAST_LOGS", "create_logs", "install"]

logger = logging.getLogger("aodncore.prefect.localserver")



def _row(log: Any, new_id: Any) -> dict[str, Any]:
    return {"id": new_id(), "name": log.name.replace("\x00", ""), "level": log.level,
            "message": log.message.replace("\x00", ""), "timestamp": log.timestamp,
            "flow_run_id": log.flow_run_id, "task_run_id": log.task_run_id}


async def create_logs(session: Any, logs: Sequence[Any]) -> None:
    """Store ``logs`` (``LogCreate``) as Prefect's ``create_logs`` does, with one ``executemany`` insert."""
    if not logs:
        return
    import sqlalchemy as sa
    from prefect._internal.uuid7 import uuid7
    from prefect.server.database import provide_database_interface
    from prefect.server.logs import messaging
    from prefect.settings.context import get_current_settings

    db = provide_database_interface()
    rows = [_row(log, uuid7) for log in logs]
    try:
        await session.execute(sa.insert(db.Log.__table__), rows)
        if get_current_settings().server.logs.stream_publishing_enabled:
            from prefect.server.schemas.core import Log

            await messaging.publish_logs([Log(**row) for row in rows])
    except RuntimeError as exc:  # as Prefect: a write racing the interpreter's shutdown is dropped
        if "can't create new thread at interpreter shutdown" not in str(exc):
            raise


def install() -> bool:
    """Install :func:`create_logs` in this (server) process when the installed Prefect was verified; True if done."""
    import prefect

    def fits() -> bool:
        from prefect.server.models import logs as log_models

        return callable(getattr(log_models, "create_logs", None))

    def patch() -> str:
        from prefect.server.models import logs as log_models

        log_models.create_logs = create_logs
        return f"Prefect {prefect.__version__}: logs stored with executemany inserts"

    return patchgate.install(
        logger, ENV_FAST_LOGS, off="Prefect's own log writer kept", fits=fits, patch=patch,
        kept=patchgate.prefect_line("its own log writer kept (aodncore's was verified for {versions})"))
