"""A minimal finite-state machine for handlers.

It offers the small part of the ``transitions`` API that handlers rely on — a ``state`` attribute on the model,
named triggers with ``before`` callbacks looked up on the model at trigger time, and an ``after_state_change``
callback — without per-instance set-up cost, so that thousands of handler runs stay cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Machine", "MachineError"]


class MachineError(Exception):
    """A trigger was fired from a state it does not leave."""


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


class Machine:
    """Attach a state machine to ``model``.

    :param model: object receiving the ``state`` attribute and providing the callbacks
    :param states: every valid state name
    :param initial: initial state
    :param transitions: dicts with ``trigger``, ``source`` (a state, list of states or ``'*'``), ``dest`` and
        optional ``before`` (callback name or list of names)
    :param after_state_change: callback name run on the model after every transition
    """

    def __init__(
        self,
        model: Any,
        states: Iterable[str],
        initial: str,
        transitions: Iterable[Mapping[str, Any]] = (),
        after_state_change: str | None = None,
        auto_transitions: bool = False,
        **_ignored: Any,
    ) -> None:
        self.model = model
        self.states = list(states)
        if initial not in self.states:
            raise ValueError(f"initial state '{initial}' is not one of the states")
        self.after_state_change = after_state_change
        self._transitions: dict[str, list[tuple[frozenset[str] | None, str, list[str]]]] = {}
        for transition in transitions:
            source = transition["source"]
            sources = None if source == "*" else frozenset(_as_list(source))
            entry = (sources, transition["dest"], _as_list(transition.get("before")))
            self._transitions.setdefault(transition["trigger"], []).append(entry)
        model.state = initial

    def trigger(self, name: str) -> bool:
        """Fire ``name``: run its ``before`` callbacks, change state, then run ``after_state_change``.

        If a ``before`` callback raises, the state is unchanged and the exception propagates.
        """
        current = self.model.state
        for sources, dest, before in self._transitions.get(name, ()):
            if sources is None or current in sources:
                for callback in before:
                    getattr(self.model, callback)()
                self.model.state = dest
                if self.after_state_change:
                    getattr(self.model, self.after_state_change)()
                return True
        raise MachineError(f"cannot trigger '{name}' from state '{current}'")
