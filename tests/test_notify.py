"""Notify step against a real SMTP server (aiosmtpd on 127.0.0.1) and a real SNS endpoint (moto server)."""

from __future__ import annotations

import datetime
import email
import io
import ipaddress
import json
import logging
import socket
import ssl
import zipfile
from collections import OrderedDict
from importlib import resources
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from aodncore.pipeline.common import NotificationRecipientType
from aodncore.pipeline.exceptions import InvalidRecipientError, NotificationFailedError
from aodncore.pipeline.steps import notify
from aodncore.pipeline.steps.notify import (
    EmailNotifyRunner,
    LogFailuresNotifyRunner,
    NotificationRecipient,
    NotifyList,
    NotifyRunnerAdapter,
    SnsNotifyRunner,
    get_child_notify_runner,
    get_notify_runner,
    smtp_server_init,
)

T = NotificationRecipientType
LOGGER = logging.getLogger("aodncore.tests.notify")
PASSWORD = "s3cr3t-Pa55word"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CollectingHandler:
    """aiosmtpd handler keeping every accepted envelope and refusing the addresses in ``refuse``."""

    def __init__(self):
        self.envelopes = []
        self.refuse: set[str] = set()
        self.logins: list[tuple[str, str]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    handler = CollectingHandler()

    def authenticator(server, session, envelope, mechanism, auth_data):
        login, password = auth_data.login.decode(), auth_data.password.decode()
        handler.logins.append((login, password))
        return AuthResult(success=(login == "mailer" and password == PASSWORD), handled=False)

    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                            auth_require_tls=False)
    controller.start()
    yield handler, controller.port
    controller.stop()


def make_config(port: int, host: str = "127.0.0.1", user: str = "", subject: str = "[{processing_result}] {input_file}",
                ) -> SimpleNamespace:
    return SimpleNamespace(
        pipeline_config={
            "mail": {
                "from": "info@aodn.org.au",
                "subject": subject,
                "smtp_server": host,
                "smtp_port": port,
                "smtp_user": user,
                "smtp_pass": PASSWORD,
            },
            "templating": {
                "template_package": "aodncore.pipeline",
                "html_notification_template": "notify.html.j2",
                "text_notification_template": "notify.txt.j2",
            },
        }
    )


def collection_row(name: str, check_passed: str, published: str, check_log: str = "") -> OrderedDict:
    return OrderedDict([("name", name), ("check_passed", check_passed), ("published", published),
                        ("check_log", check_log), ("dest_path", f"IMOS/{name}")])


def notification_data(error_details=False, rows=None) -> dict:
    rows = rows if rows is not None else [
        collection_row("good.nc", "True", "Yes"),
        collection_row("bad.nc", "False", "No", "check 1 failed\ncheck 2 failed"),
        collection_row("skipped.nc", "N/A", "No"),
    ]
    return {
        "input_file": "upload.zip",
        "processing_result": "ERROR" if error_details else "SUCCESS",
        "handler_start_time": "2024-05-01 10:30",
        "checks": "cf,imos:1.4",
        "collection_headers": list(rows[0].keys()) if rows else [],
        "collection_data": rows,
        "error_details": error_details,
        "upload_dir": "/incoming/ANMN",
        "celery_task_name": "tasks.ANMN",
        "celery_task_id": "abc123",
    }


def parse(envelope) -> email.message.Message:
    return email.message_from_bytes(envelope.content)


# ---------------------------------------------------------------------------------------------------------------------
# recipients and lists


def test_recipient_from_string():
    valid = NotificationRecipient.from_string("email:owner1@example.com")
    assert (valid.address, valid.notify_type, valid.raw_string, valid.error) == (
        "owner1@example.com", T.EMAIL, "email:owner1@example.com", None)
    assert not valid.notification_attempted and not valid.notification_succeeded

    no_colon = NotificationRecipient.from_string("4.XXXX")
    assert no_colon.notify_type is T.INVALID and no_colon.address == ""
    assert isinstance(no_colon.error, InvalidRecipientError) and str(no_colon.error) == "invalid recipient string"

    bad_protocol = NotificationRecipient.from_string("INVALID:nobody2@example.com")
    assert bad_protocol.notify_type is T.INVALID and str(bad_protocol.error) == "invalid protocol"
    assert NotificationRecipient.from_string("EMAIL:a@example.com").notify_type is T.INVALID  # case-sensitive

    bad_address = NotificationRecipient.from_string("email:not-an-address")
    assert bad_address.notify_type is T.INVALID and str(bad_address.error) == "invalid email address"

    sns = NotificationRecipient.from_string("sns:arn:aws:sns:us-east-1:123456789012:topic")
    assert sns.notify_type is T.SNS and sns.address == "arn:aws:sns:us-east-1:123456789012:topic"

    with pytest.raises(TypeError):
        valid.notify_type = "email"
    with pytest.raises(TypeError):
        valid.notification_attempted = 1
    with pytest.raises(AttributeError):
        valid.address = "x"


def test_notify_list_operations():
    nl = NotifyList.from_collection(["email:a@example.com", "email:b@example.com", "sns:topic", "bogus"])
    assert len(nl) == 4 and [r.raw_string for r in nl] == ["email:a@example.com", "email:b@example.com",
                                                           "sns:topic", "bogus"]
    assert nl.add(NotificationRecipient.from_string("email:a@example.com")) is False
    extra = NotificationRecipient.from_string("email:c@example.com")
    assert nl.append(extra) is True and extra in nl
    assert nl.discard(extra) is True and extra not in nl and nl.discard(extra) is False
    with pytest.raises(TypeError):
        nl.add("email:a@example.com")
    with pytest.raises(TypeError):
        nl.union(["email:x@example.com"])
    assert isinstance(nl[1:3], NotifyList) and [r.address for r in nl[1:3]] == ["b@example.com", "topic"]
    assert nl[0].address == "a@example.com"
    assert [r.address for r in nl.filter_by_notify_type(T.EMAIL)] == ["a@example.com", "b@example.com"]
    assert nl.filter_by_notify_type(T.EMAIL).issubset(nl) and nl.issuperset(nl[:1])
    assert len(nl.difference(nl[:2])) == 2
    assert len(nl.union(NotifyList.from_collection(["email:z@example.com"]))) == 5

    emails = nl.filter_by_notify_type(T.EMAIL)
    emails.set_notification_attempted()
    emails.update_from_error_dict({"b@example.com": (550, b"mailbox unavailable")})
    assert [r.address for r in nl.filter_by_succeeded()] == ["a@example.com"]
    (failed,) = nl.filter_by_failed()
    assert isinstance(failed.error, NotificationFailedError) and str(failed.error) == "550: mailbox unavailable"
    with pytest.raises(TypeError):
        emails.update_from_error_dict([])


def test_child_runner_factory():
    assert isinstance(get_notify_runner({}, None, LOGGER), NotifyRunnerAdapter)
    assert isinstance(get_child_notify_runner(T.EMAIL, {}, None, LOGGER), EmailNotifyRunner)
    assert isinstance(get_child_notify_runner(T.SNS, {}, None, LOGGER), SnsNotifyRunner)
    assert isinstance(get_child_notify_runner(T.INVALID, {}, None, LOGGER), LogFailuresNotifyRunner)
    with pytest.raises(TypeError):
        get_child_notify_runner("email", {}, None, LOGGER)


def test_log_failures_runner_exact_warning(caplog):
    runner = LogFailuresNotifyRunner({}, None, LOGGER)
    nl = NotifyList.from_collection(["invalid:recipient1"])
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        runner.run(nl)
    assert "recipients unable to be notified: ['invalid:recipient1']" in caplog.messages
    assert nl[0].notification_attempted and not nl[0].notification_succeeded


# ---------------------------------------------------------------------------------------------------------------------
# tables and templates


def test_file_tables():
    data = notification_data(rows=[collection_row("<b>odd</b>.nc", "False", "No")])
    tables = EmailNotifyRunner(data, None, LOGGER)._get_file_tables()
    assert set(tables) == {"text_input_file_table", "html_input_file_table", "text_collection_table",
                           "html_collection_table"}
    assert tables["text_input_file_table"].splitlines() == [
        "Input file: upload.zip", "Uploaded to: /incoming/ANMN", "Processed at: 2024-05-01 10:30",
        "Compliance checks: cf,imos:1.4", "Result: SUCCESS",
    ]
    assert tables["html_input_file_table"].startswith("<table><tbody>")
    assert "<th" in tables["html_input_file_table"] and "<td" in tables["html_input_file_table"]
    header = tables["text_collection_table"].splitlines()[0].split()
    assert header == ["Name", "Checks", "passed", "Published?"]
    assert "&lt;b&gt;odd&lt;/b&gt;.nc" in tables["html_collection_table"]
    assert "<b>odd" not in tables["html_collection_table"]


def test_empty_collection_table_and_template_sections():
    config = make_config(25)
    success = EmailNotifyRunner(notification_data(rows=[]), config, LOGGER)
    assert success.template_values["text_collection_table"] == ""
    text, html = success.message_parts
    assert "Error details" not in text and "File collection details" not in text
    assert "tasks.ANMN[abc123]" in text and "tasks.ANMN[abc123]" in html
    assert "Input file: upload.zip" in text

    failure = EmailNotifyRunner(notification_data(error_details="Traceback <boom>"), config, LOGGER)
    text, html = failure.message_parts
    assert "Error details" in text and "Traceback <boom>" in text
    assert "File collection details" in text and "bad.nc" in text
    assert "Traceback &lt;boom&gt;" in html and "<boom>" not in html


def test_templates_are_package_data():
    templates = resources.files("aodncore.pipeline").joinpath("templates")
    assert templates.joinpath("notify.txt.j2").is_file()
    assert templates.joinpath("notify.html.j2").is_file()


# ---------------------------------------------------------------------------------------------------------------------
# e-mail through a real SMTP server


def test_email_sent_with_parts_and_error_log_attachment(smtp_server, caplog):
    handler, port = smtp_server
    runner = get_notify_runner(notification_data(error_details="boom"), make_config(port), LOGGER)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        result = runner.run(["email:one@example.com", "email:two@example.com"])

    assert [r.notification_succeeded for r in result] == [True, True]
    assert all(r.notification_attempted and r.error is None for r in result)
    assert "all notification attempts were successful" in caplog.messages

    (envelope,) = handler.envelopes
    assert envelope.mail_from == "info@aodn.org.au"
    assert envelope.rcpt_tos == ["one@example.com", "two@example.com"]
    message = parse(envelope)
    assert message["Subject"] == "[ERROR] upload.zip"
    assert message["From"] == "info@aodn.org.au"
    assert message["To"] == "one@example.com, two@example.com"
    assert message.get_content_type() == "multipart/mixed"

    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    text_part, related = alternative.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert "Input file: upload.zip" in text_part.get_payload(decode=True).decode()
    assert related.get_content_type() == "multipart/related"
    (html_part,) = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert "<table>" in html_part.get_payload(decode=True).decode()

    assert attachment.get_content_type() == "application/zip"
    assert attachment.get_filename() == "error_logs.zip"
    assert attachment["Content-Transfer-Encoding"] == "base64"
    with zipfile.ZipFile(io.BytesIO(attachment.get_payload(decode=True))) as archive:
        assert archive.namelist() == ["bad.nc.log.txt"]
        assert archive.read("bad.nc.log.txt").decode() == "check 1 failed\ncheck 2 failed"


def test_email_without_failed_checks_has_no_attachment(smtp_server):
    handler, port = smtp_server
    data = notification_data(rows=[collection_row("good.nc", "True", "Yes", "all fine")])
    runner = EmailNotifyRunner(data, make_config(port, subject="{input_file} at {handler_start_time}"), LOGGER)
    result = runner.run(NotifyList.from_collection(["email:one@example.com"]))
    assert result[0].notification_succeeded
    message = parse(handler.envelopes[0])
    assert message["Subject"] == "upload.zip at 2024-05-01 10:30"
    assert len(message.get_payload()) == 1


def test_email_partially_refused(smtp_server):
    handler, port = smtp_server
    handler.refuse = {"refused@example.com"}
    runner = EmailNotifyRunner(notification_data(), make_config(port), LOGGER)
    result = runner.run(NotifyList.from_collection(["email:ok@example.com", "email:refused@example.com"]))
    ok, refused = result
    assert ok.notification_succeeded and ok.error is None
    assert not refused.notification_succeeded and refused.notification_attempted
    assert isinstance(refused.error, NotificationFailedError)
    assert str(refused.error).startswith("550: ") and "mailbox unavailable" in str(refused.error)
    assert runner.error is None
    assert handler.envelopes[0].rcpt_tos == ["ok@example.com"]


def test_email_all_refused(smtp_server):
    handler, port = smtp_server
    handler.refuse = {"a@example.com", "b@example.com"}
    runner = EmailNotifyRunner(notification_data(), make_config(port), LOGGER)
    result = runner.run(NotifyList.from_collection(["email:a@example.com", "email:b@example.com"]))
    assert [str(r.error).split(":")[0] for r in result] == ["550", "550"]
    assert not result.filter_by_succeeded() and len(result.filter_by_failed()) == 2
    assert runner.error is None
    assert handler.envelopes == []


def test_email_unreachable_server(caplog):
    port = free_port()  # nothing listens there
    runner = get_notify_runner(notification_data(), make_config(port), LOGGER)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        result = runner.run(["email:one@example.com", "email:two@example.com"])
    assert all(r.notification_attempted and not r.notification_succeeded for r in result)
    assert all(isinstance(r.error, ConnectionRefusedError) for r in result)
    assert any(r.levelno == logging.ERROR and "failed to notify" in r.getMessage() for r in caplog.records)


def test_smtp_server_init_returns_exception():
    error = smtp_server_init("127.0.0.1", free_port(), 5)
    assert isinstance(error, ConnectionRefusedError)


def test_email_login_and_password_never_logged(smtp_server, caplog):
    handler, port = smtp_server
    runner = EmailNotifyRunner(notification_data(), make_config(port, user="mailer"), LOGGER)
    with caplog.at_level(logging.DEBUG):
        result = runner.run(NotifyList.from_collection(["email:one@example.com"]))
    assert result[0].notification_succeeded
    assert handler.logins == [("mailer", PASSWORD)]
    assert PASSWORD not in caplog.text


def test_email_login_failure_does_not_leak_password(smtp_server, caplog):
    handler, port = smtp_server
    config = make_config(port, user="someone-else")
    runner = EmailNotifyRunner(notification_data(), config, LOGGER)
    with caplog.at_level(logging.DEBUG):
        result = runner.run(NotifyList.from_collection(["email:one@example.com"]))
    (recipient,) = result
    assert not recipient.notification_succeeded and recipient.error is not None
    assert runner.error is recipient.error
    assert PASSWORD not in caplog.text and PASSWORD not in str(recipient.error) and PASSWORD not in repr(runner.error)
    assert handler.envelopes == []


def test_email_no_login_without_user(smtp_server):
    handler, port = smtp_server
    EmailNotifyRunner(notification_data(), make_config(port, user=""), LOGGER).run(
        NotifyList.from_collection(["email:one@example.com"]))
    assert handler.logins == [] and len(handler.envelopes) == 1


def _self_signed_cert(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_email_starttls_when_advertised(tmp_path, monkeypatch):
    cert_file, key_file = _self_signed_cert(tmp_path)
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(cert_file, key_file)
    handler = CollectingHandler()
    tls_seen = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        tls_seen.append(session.ssl is not None)
        return AuthResult(success=auth_data.password.decode() == PASSWORD, handled=False)

    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=tls_context,
                            require_starttls=True, authenticator=authenticator)
    controller.start()
    try:
        # the client verifies the server certificate: trust our self-signed one
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        runner = EmailNotifyRunner(notification_data(), make_config(controller.port, user="mailer"), LOGGER)
        result = runner.run(NotifyList.from_collection(["email:one@example.com"]))
    finally:
        controller.stop()
    assert result[0].notification_succeeded, result[0].error
    assert tls_seen == [True]
    assert len(handler.envelopes) == 1


def test_email_refuses_plaintext_credentials_to_remote_host(monkeypatch, smtp_server):
    """A non-loopback server name without STARTTLS: credentials are not sent (DNS name mapped to 127.0.0.1)."""
    handler, port = smtp_server
    real_create_connection = socket.create_connection

    def fake_dns(address, *args, **kwargs):
        host, p = address
        return real_create_connection(("127.0.0.1" if host == "mail.example.com" else host, p), *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", fake_dns)
    runner = EmailNotifyRunner(notification_data(), make_config(port, host="mail.example.com", user="mailer"), LOGGER)
    result = runner.run(NotifyList.from_collection(["email:one@example.com"]))
    assert not result[0].notification_succeeded
    assert "refusing to send credentials unencrypted" in str(result[0].error)
    assert handler.logins == [] and handler.envelopes == []


# ---------------------------------------------------------------------------------------------------------------------
# adapter


def test_adapter_invalid_recipients_logged_and_not_sent(smtp_server, caplog):
    handler, port = smtp_server
    runner = NotifyRunnerAdapter(notification_data(), make_config(port), LOGGER, None)
    with caplog.at_level(logging.INFO, logger=LOGGER.name):
        result = runner.run(["4.XXXX", "INVALID:nobody2@example.com", "email:bad-address", "email:ok@example.com"])
    invalid = result.filter_by_notify_type(T.INVALID)
    assert len(invalid) == 3
    assert all(r.notification_attempted and not r.notification_succeeded for r in invalid)
    assert [str(r.error) for r in invalid] == ["invalid recipient string", "invalid protocol", "invalid email address"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("4.XXXX" in m and "invalid recipient string" in m for m in errors)
    assert handler.envelopes[0].rcpt_tos == ["ok@example.com"]
    assert [r.raw_string for r in result.filter_by_succeeded()] == ["email:ok@example.com"]
    assert "all notification attempts were successful" not in caplog.messages


def test_adapter_patched_template_renderer(monkeypatch, smtp_server):
    handler, port = smtp_server

    class FakeRenderer:
        def render(self, name, values):
            return f"rendered {name} for {values['input_file']}"

    monkeypatch.setattr(notify, "TemplateRenderer", FakeRenderer)
    get_notify_runner(notification_data(), make_config(port), LOGGER).run(["email:one@example.com"])
    message = parse(handler.envelopes[0])
    text_part = message.get_payload()[0].get_payload()[0]
    assert text_part.get_payload(decode=True).decode() == "rendered notify.txt.j2 for upload.zip"


# ---------------------------------------------------------------------------------------------------------------------
# SNS through moto's server


def test_sns_publish(moto_endpoint):
    import boto3

    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name="pipeline-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="pipeline-notifications-q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    missing_arn = topic_arn.replace("pipeline-notifications", "no-such-topic")
    runner = get_notify_runner(notification_data(error_details="boom"), make_config(25), LOGGER)
    result = runner.run([f"sns:{topic_arn}", f"sns:{missing_arn}"])

    ok, missing = result
    assert ok.notification_attempted and ok.notification_succeeded and ok.error is None
    assert missing.notification_attempted and not missing.notification_succeeded
    assert isinstance(missing.error, NotificationFailedError)

    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["Subject"] == "[ERROR] upload.zip"
    assert "Input file: upload.zip" in body["Message"] and "Error details" in body["Message"]
