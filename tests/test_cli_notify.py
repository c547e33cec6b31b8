"""``aodncore ingest --notify``: the people responsible hear about a refused file, through a real SMTP server."""

from __future__ import annotations

import email
import json
import shutil
import socket

import pytest
from aiosmtpd.controller import Controller
from ingest_helpers import BAD_NC, GOOD_FILES, IMOS_DIR, restore_process_state  # noqa: F401

from aodncore.cli import main
from aodncore.pipeline.defaultconfig import default_pipeline_config

GOOD = next(iter(GOOD_FILES))


class _Collector:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd hook name
        self.envelopes.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp():
    collector = _Collector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield collector, controller.port
    controller.stop()


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_refused_file_is_reported_to_the_notify_recipients(smtp, tmp_path, capsys):
    collector, port = smtp
    pipeline_config = default_pipeline_config(tmp_path / "data")
    pipeline_config["mail"].update({"smtp_server": "127.0.0.1", "smtp_port": port, "from": "pipeline@example.org"})
    config = tmp_path / "pipeline.conf"
    config.write_text(json.dumps(pipeline_config))
    landing = tmp_path / "landing"
    landing.mkdir()
    for name in (GOOD, BAD_NC):
        shutil.copy(IMOS_DIR / name, landing / name)

    code = main(["ingest", str(landing), "--config", str(config), "--check", "cf:1.6", "--workers", "1",
                 "--notify", "email:ops@example.org", "--settle", "0"])

    assert code == 1, capsys.readouterr()
    assert len(collector.envelopes) == 1  # the good file is published silently
    envelope = collector.envelopes[0]
    assert envelope.rcpt_tos == ["ops@example.org"]
    message = email.message_from_bytes(envelope.content)
    body = "\n".join(
        part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
    )
    assert BAD_NC in body and "ERROR" in body
    assert len(list((tmp_path / "data" / "error").rglob("*.reason.json"))) == 1
    assert len(list((tmp_path / "data" / "error").rglob(BAD_NC))) == 1


@pytest.mark.usefixtures("prefect_harness", "restore_process_state")
def test_notify_recipient_must_be_protocol_and_address(tmp_path, capsys):
    code = main(["ingest", str(IMOS_DIR / GOOD), "--base-dir", str(tmp_path), "--notify", "ops@example.org"])
    captured = capsys.readouterr()
    assert code == 2
    assert "--notify 'ops@example.org'" in captured.err
    assert not (tmp_path / "published").exists()
