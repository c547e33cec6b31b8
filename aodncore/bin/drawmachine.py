"""``python -m aodncore.bin.drawmachine [-o FILE] [--format dot|mermaid] [--handler MODULE:CLASS]``: draw a
handler's state machine.

Prints the states and transitions of :class:`aodncore.pipeline.HandlerBase` (or of the handler class given with
``--handler``, for subclasses that change ``all_states`` / ``all_transitions``) as a Graphviz ``dot`` graph or a
Mermaid state diagram. Each edge is labelled with its trigger and the handler method run on the way. An output
file ending in ``.svg``, ``.png`` or ``.pdf`` is rendered with Graphviz's ``dot`` program, which must then be on
``PATH``; any other name receives the text.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["dot_graph", "machine_of", "main", "mermaid_diagram"]

RENDERED_SUFFIXES = (".svg", ".png", ".pdf")


def machine_of(handler_class: type) -> tuple[list[str], list[dict[str, Any]]]:
    """The states and transitions a handler class declares (``all_states``, ``all_transitions``)."""
    return list(handler_class.all_states), [dict(t) for t in handler_class.all_transitions]


def _edges(states: Sequence[str], transitions: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(source, destination, label) for every transition, a ``'*'`` source expanded to every state."""
    edges = []
    for transition in transitions:
        source = transition["source"]
        sources = states if source == "*" else [source] if isinstance(source, str) else list(source)
        before = transition.get("before")
        befores = [before] if isinstance(before, str) else list(before or ())
        label = transition["trigger"] + (f" / {', '.join(befores)}" if befores else "")
        edges.extend((origin, transition["dest"], label) for origin in sources)
    return edges


def _short(state: str) -> str:
    return state.removeprefix("HANDLER_")


def dot_graph(states: Sequence[str], transitions: Iterable[Mapping[str, Any]], initial: str | None = None) -> str:
    """A Graphviz ``digraph`` of the machine; the initial state (default: the first) is drawn in bold."""
    initial = initial or states[0]
    lines = ["digraph handler_states {", "  rankdir=TB;", '  node [shape=box, style=rounded, fontname="sans"];']
    for state in states:
        extra = ", style=\"rounded,bold\"" if state == initial else ""
        lines.append(f'  "{state}" [label="{_short(state)}"{extra}];')
    for origin, dest, label in _edges(states, transitions):
        lines.append(f'  "{origin}" -> "{dest}" [label="{label}", fontsize=9];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def mermaid_diagram(states: Sequence[str], transitions: Iterable[Mapping[str, Any]],
                    initial: str | None = None) -> str:
    """A Mermaid ``stateDiagram-v2`` of the machine, starting at the initial state (default: the first)."""
    initial = initial or states[0]
    lines = ["stateDiagram-v2", f"  [*] --> {initial}"]
    lines.extend(f"  {origin} --> {dest} : {label}" for origin, dest, label in _edges(states, transitions))
    return "\n".join(lines) + "\n"


def _load_handler(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ValueError(f"--handler must be MODULE:CLASS, got {spec!r}")
    try:
        handler_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"cannot load handler {spec!r}: {error}") from None
    if not hasattr(handler_class, "all_states") or not hasattr(handler_class, "all_transitions"):
        raise ValueError(f"{spec!r} declares no all_states / all_transitions (not a handler class)")
    return handler_class


def _render(text: str, output: Path) -> None:
    program = shutil.which("dot")
    if program is None:
        raise ValueError(f"rendering {output.name} needs Graphviz's 'dot' program on PATH "
                         "(or write the text: -o FILE.dot)")
    subprocess.run([program, f"-T{output.suffix[1:]}", "-o", str(output)], input=text.encode(), check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drawmachine", description="Draw a handler's state machine.")
    parser.add_argument("-o", "--output", type=Path, help="write here (.svg/.png/.pdf: rendered with dot)")
    parser.add_argument("--format", choices=("dot", "mermaid"), default="dot", help="text format (default dot)")
    parser.add_argument("--handler", default="aodncore.pipeline.handlerbase:HandlerBase",
                        help="MODULE:CLASS of the handler to draw (default HandlerBase)")
    args = parser.parse_args(argv)
    try:
        states, transitions = machine_of(_load_handler(args.handler))
        if args.output is not None and args.output.suffix.lower() in RENDERED_SUFFIXES:
            _render(dot_graph(states, transitions), args.output)
            return 0
        text = (mermaid_diagram if args.format == "mermaid" else dot_graph)(states, transitions)
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.write_text(text, encoding="utf-8")
    except (ValueError, OSError, subprocess.CalledProcessError) as error:
        print(f"drawmachine: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
