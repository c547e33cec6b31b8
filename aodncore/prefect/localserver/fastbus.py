"""Events on the background server's in-memory bus handed to the event persister already parsed.

Every event the server receives (``POST /events``, ``/events/in``, its own state-change events) is a
``ReceivedEvent`` that :class:`prefect.server.events.messaging.EventPublisher` serialises to JSON for the bus; each
subscriber gets a copy of the message, and the event persister parses the JSON back into a ``ReceivedEvent``
(``model_validate_json``: ~0.1–0.2 ms per event in the server, pendulum-backed date validation and a settings
look-up per label). In this one process the parsed event already exists, so:

* :func:`install` wraps ``EventPublisher.publish_event`` / ``publish_data``: the message's data is the same JSON
  bytes, as an :class:`EventJSON` (a ``bytes`` subclass) that also carries the event it was made from. Copies of the
  message (the memory broker's ``deepcopy`` per subscription, a dead-letter write) see plain immutable bytes.
* the persister's module sees :class:`PersisterEvents` as ``ReceivedEvent``: its ``model_validate_json`` returns the
  carried event for such bytes and parses anything else exactly as Prefect does (messages from elsewhere, e.g. the
  ephemeral ``EventsPipeline``). The persister only reads events (it stores their rows), and the publisher is done
  with the event once it is on the bus; the rows stored are the same
  (``tests/test_localserver_fastbus.py`` runs Prefect's persister handler on both and compares the rows and the
  events read back).

* the memory broker deep-copies each message once per subscription (``Topic.publish``): ``MemoryMessage`` gets a
  ``__deepcopy__`` that, for immutable data and a plain dictionary of ``str`` attributes (every event message),
  makes the copy ``deepcopy`` would make — a new message, a new dictionary of the same strings, the retry count —
  without its per-object machinery; any other message is copied the standard way (``tests/test_localserver_fastbus.py``
  compares both copies field by field).

Other subscribers (the task-run recorder, the websocket distributor, triggers when a user turns them on) parse as
before. Version-gated with :mod:`.fastevents` (:data:`~.patchgate.VERIFIED_PREFECT_VERSIONS`), installed by
:func:`aodncore.prefect.localserver.fastevents.install`; ``AODNCORE_SERVER_FAST_BUS=0`` (or
``AODNCORE_SERVER_FAST_EVENTS=0``) keeps Prefect's own code, and ``server.log`` says which.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from aodncore.prefect.localserver import patchgate
from aodncore.prefect.localserver.settings import ENV_FAST_BUS

__all__ = ["ENV_FAST_BUS", "EventJSON", "PersisterEvents", "install"]

logger = logging.getLogger("aodncore.prefect.localserver")


_publishing: ContextVar[Any] = ContextVar("aodncore_publishing_event", default=None)


class EventJSON(bytes):
    """A bus message's data: the event's JSON bytes, unchanged, carrying the ``ReceivedEvent`` they encode."""

    event: Any = None

    def __copy__(self) -> EventJSON:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> EventJSON:
        return self  # immutable bytes; the carried event is only read

    def __reduce__(self) -> tuple[Any, ...]:
        return bytes, (bytes(self),)  # pickled as the plain bytes


class PersisterEvents:
    """Stands in for ``ReceivedEvent`` in the event persister's module: the carried event, or Prefect's parse."""

    @staticmethod
    def model_validate_json(data: Any, *args: Any, **kwargs: Any) -> Any:
        from prefect.server.events.schemas.events import ReceivedEvent

        if type(data) is EventJSON and data.event is not None and not args and not kwargs:
            return data.event
        return ReceivedEvent.model_validate_json(data, *args, **kwargs)


_MESSAGE_FIELDS = frozenset({"data", "attributes", "retry_count"})


def _message_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """``MemoryMessage.__deepcopy__``: the memory broker deep-copies each message once per subscription; a message
    of immutable data (bytes, str, :class:`EventJSON`) and a plain dictionary of ``str`` attributes is copied as
    ``deepcopy`` would copy it (a new message, a new dictionary of the same strings), without its machinery; any
    other message the standard way."""
    import copy

    attributes, data = self.attributes, self.data
    if (type(data) in (bytes, str, EventJSON) and type(self.retry_count) is int
            and self.__dict__.keys() == _MESSAGE_FIELDS
            and (attributes is None or (type(attributes) is dict
                                        and all(type(k) is str and type(v) is str for k, v in attributes.items())))):
        copied = type(self)(data, None if attributes is None else dict(attributes), self.retry_count)
    else:
        copied = copy._reconstruct(self, memo, *self.__reduce_ex__(4))
    memo[id(self)] = copied
    return copied


def _wrap_publish_event(original: Any) -> Any:
    async def publish_event(self: Any, event: Any) -> None:
        token = _publishing.set(event)
        try:
            await original(self, event)
        finally:
            _publishing.reset(token)

    publish_event.aodncore_fast_bus = True  # type: ignore[attr-defined]
    publish_event.__wrapped__ = original  # type: ignore[attr-defined]
    return publish_event


def _wrap_publish_data(original: Any) -> Any:
    async def publish_data(self: Any, data: bytes, attributes: Any) -> None:
        event = _publishing.get()
        if event is not None and type(data) is bytes and (attributes or {}).get("id") == str(event.id):
            data = EventJSON(data)
            data.event = event
        await original(self, data, attributes)

    publish_data.aodncore_fast_bus = True  # type: ignore[attr-defined]
    publish_data.__wrapped__ = original  # type: ignore[attr-defined]
    return publish_data


def _message_fits() -> bool:
    """Prefect's ``MemoryMessage`` is still the dataclass of three fields this copy was written for."""
    import dataclasses

    from prefect.server.utilities.messaging import memory

    message = getattr(memory, "MemoryMessage", None)
    if not dataclasses.is_dataclass(message):
        return False
    own = message.__dict__.get("__deepcopy__")
    return own in (None, _message_deepcopy) and \
        [field.name for field in dataclasses.fields(message)] == ["data", "attributes", "retry_count"]


def install() -> bool:
    """Install the hand-off in this (server) process when the installed Prefect was verified; True if done."""
    import prefect

    def fits() -> bool:
        from prefect.server.events.messaging import EventPublisher
        from prefect.server.events.schemas.events import ReceivedEvent
        from prefect.server.events.services import event_persister

        return getattr(event_persister, "ReceivedEvent", None) in (ReceivedEvent, PersisterEvents) and \
            callable(getattr(EventPublisher, "publish_event", None)) and \
            callable(getattr(EventPublisher, "publish_data", None)) and _message_fits()

    def patch() -> str:
        from prefect.server.events.messaging import EventPublisher
        from prefect.server.events.services import event_persister
        from prefect.server.utilities.messaging import memory

        if not getattr(EventPublisher.publish_event, "aodncore_fast_bus", False):
            EventPublisher.publish_event = _wrap_publish_event(EventPublisher.publish_event)
            EventPublisher.publish_data = _wrap_publish_data(EventPublisher.publish_data)
        event_persister.ReceivedEvent = PersisterEvents
        memory.MemoryMessage.__deepcopy__ = _message_deepcopy
        return (f"Prefect {prefect.__version__}: events handed to the event persister already parsed; bus messages "
                "copied per subscription without deepcopy's machinery")

    return patchgate.install(
        logger, ENV_FAST_BUS, off="the event persister parses every bus message itself",
        fits=fits, patch=patch,
        kept=patchgate.prefect_line("the event persister parses every bus message itself (aodncore's hand-off was "
                                    "verified for {versions})"))
