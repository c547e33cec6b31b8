"""The drawmachine script draws the handler state machine the classic HandlerBase really runs."""

from __future__ import annotations

import re
import shutil

import pytest

from aodncore.bin import drawmachine
from aodncore.pipeline.handlerbase import HandlerBase
from aodncore.pipeline.handlerstates import ORDERED_STATES, ORDERED_TRANSITIONS


def _dot_edges(text: str) -> set[tuple[str, str, str]]:
    return set(re.findall(r'"(\w+)" -> "(\w+)" \[label="([^"]+)"', text))


def test_dot_output_has_every_state_and_transition(capsys):
    assert drawmachine.main([]) == 0
    text = capsys.readouterr().out
    assert text.startswith("digraph handler_states {")
    for state in HandlerBase.all_states:
        assert f'"{state}" [label=' in text
    edges = _dot_edges(text)
    assert ("HANDLER_INITIAL", "HANDLER_INITIALISED", "_trigger_initialise / _initialise") in edges
    assert ("HANDLER_NOTIFIED_ERROR", "HANDLER_COMPLETED_ERROR",
            "_trigger_complete_with_errors / _complete_with_errors") in edges
    # an error can be notified from every ordered state, and nowhere else
    error_sources = {source for source, dest, _ in edges if dest == "HANDLER_NOTIFIED_ERROR"}
    assert error_sources == set(ORDERED_STATES)
    assert len(edges) == len(ORDERED_TRANSITIONS) + 3 + len(ORDERED_STATES)


def test_mermaid_output_to_a_file(tmp_path):
    target = tmp_path / "machine.mmd"
    assert drawmachine.main(["--format", "mermaid", "-o", str(target)]) == 0
    lines = target.read_text().splitlines()
    assert lines[:2] == ["stateDiagram-v2", "  [*] --> HANDLER_INITIAL"]
    assert "  HANDLER_CHECKED --> HANDLER_PROCESSED : _trigger_process / process" in lines


class _ShortHandler(HandlerBase):
    all_states = ["A", "B"]
    all_transitions = [{"trigger": "go", "source": "*", "dest": "B"}]


def test_a_subclass_with_its_own_machine(capsys):
    assert drawmachine.main(["--handler", f"{__name__}:_ShortHandler"]) == 0
    assert _dot_edges(capsys.readouterr().out) == {("A", "B", "go"), ("B", "B", "go")}


@pytest.mark.parametrize("spec, reason", [
    ("no_colon", "must be MODULE:CLASS"),
    ("aodncore.no_such_module:X", "cannot load handler"),
    ("aodncore.pipeline.handlerbase:logging", "not a handler class"),
])
def test_bad_handler_is_one_line_error(spec, reason, capsys):
    assert drawmachine.main(["--handler", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("drawmachine: ") and reason in err and "\n" not in err


def test_rendering_needs_graphviz(tmp_path, capsys, monkeypatch):
    if shutil.which("dot") is None:
        assert drawmachine.main(["-o", str(tmp_path / "m.svg")]) == 2
        assert "needs Graphviz's 'dot' program" in capsys.readouterr().err
        assert not (tmp_path / "m.svg").exists()
    else:
        assert drawmachine.main(["-o", str(tmp_path / "m.svg")]) == 0
        assert "<svg" in (tmp_path / "m.svg").read_text()
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot here
    assert drawmachine.main(["-o", str(tmp_path / "n.png")]) == 2
