"""Notify step: tell recipients (e-mail, SNS topics) how a handler run went.

Recipients are strings ``protocol:address`` (``email:someone@example.com``, ``sns:<topic ARN>``). Delivery
failures never raise: they are recorded on each :class:`NotificationRecipient` and logged.

``smtplib`` is used as ``smtplib.SMTP(...)`` and ``TemplateRenderer`` as a module global, both looked up at call
time so tests can patch them on this module.
"""

from __future__ import annotations

import html
import io
import ipaddress
import os
import smtplib
import ssl
import zipfile
from collections.abc import Iterable, Iterator
from email import policy as email_policy
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from functools import cached_property
from typing import Any

from aodncore.pipeline.common import NotificationRecipientType, validate_recipienttype
from aodncore.pipeline.exceptions import InvalidRecipientError, NotificationFailedError
from aodncore.pipeline.steps.basestep import BaseStepRunner
from aodncore.util.misc import TemplateRenderer, Validator, format_exception, validate_type

__all__ = [
    "get_notify_runner",
    "NotifyRunnerAdapter",
    "EmailNotifyRunner",
    "LogFailuresNotifyRunner",
    "NotifyList",
    "NotificationRecipient",
    "SnsNotifyRunner",
]

DEFAULT_SMTP_PORT = 587
SMTP_TIMEOUT = 60
SNS_SUBJECT_MAX = 100
SNS_MESSAGE_MAX_BYTES = 256 * 1024 - 1024  # keep a margin below the 256 KiB SNS limit

INPUT_FILE_TABLE_ROWS = (
    ("Input file", "input_file"),
    ("Uploaded to", "upload_dir"),
    ("Processed at", "handler_start_time"),
    ("Compliance checks", "checks"),
    ("Result", "processing_result"),
)
COLLECTION_TABLE_COLUMNS = (("name", "Name"), ("check_passed", "Checks passed"), ("published", "Published?"))


# ---------------------------------------------------------------------------------------------------------------------
# recipients


class NotificationRecipient:
    """One recipient: address, protocol type, the raw string it came from, and the outcome of notifying it."""

    def __init__(
        self,
        address: str,
        notify_type: NotificationRecipientType,
        raw_string: str = "",
        error: Exception | None = None,
    ) -> None:
        self._address = address
        self.notify_type = notify_type
        self._raw_string = raw_string
        self.error = error
        self._notification_attempted = False
        self._notification_succeeded = False

    def __repr__(self) -> str:
        return (
            f"NotificationRecipient(address={self._address!r}, notify_type={self._notify_type.name}, "
            f"raw_string={self._raw_string!r}, error={self.error!r})"
        )

    def _key(self) -> tuple:
        return self._address, self._notify_type, self._raw_string

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NotificationRecipient) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    @property
    def address(self) -> str:
        return self._address

    @property
    def raw_string(self) -> str:
        return self._raw_string

    @property
    def notify_type(self) -> NotificationRecipientType:
        return self._notify_type

    @notify_type.setter
    def notify_type(self, value: NotificationRecipientType) -> None:
        validate_recipienttype(value)
        self._notify_type = value

    @property
    def notification_attempted(self) -> bool:
        return self._notification_attempted

    @notification_attempted.setter
    def notification_attempted(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("notification_attempted must be a bool")
        self._notification_attempted = value

    @property
    def notification_succeeded(self) -> bool:
        return self._notification_succeeded

    @notification_succeeded.setter
    def notification_succeeded(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError("notification_succeeded must be a bool")
        self._notification_succeeded = value

    @classmethod
    def from_string(cls, recipient_string: str) -> NotificationRecipient:
        """Parse ``protocol:address``; anything unusable becomes an ``INVALID`` recipient carrying the reason."""
        invalid = NotificationRecipientType.INVALID
        if not isinstance(recipient_string, str) or ":" not in recipient_string:
            return cls("", invalid, str(recipient_string), InvalidRecipientError("invalid recipient string"))
        protocol, address = recipient_string.split(":", 1)
        notify_type = NotificationRecipientType.get_type_from_protocol(protocol)
        if notify_type is invalid:
            return cls(address, invalid, recipient_string, InvalidRecipientError(invalid.error_string))
        if not notify_type.address_validation_function(address):
            return cls(address, invalid, recipient_string, InvalidRecipientError(notify_type.error_string))
        return cls(address, notify_type, recipient_string)


validate_notificationrecipient: Validator = validate_type(NotificationRecipient)


class NotifyList:
    """An insertion-ordered set of :class:`NotificationRecipient`."""

    def __init__(self, data: Iterable[NotificationRecipient] | None = None) -> None:
        self._items: dict[NotificationRecipient, None] = {}
        if data is not None:
            self.update(data)

    def __repr__(self) -> str:
        return f"NotifyList({list(self._items)!r})"

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[NotificationRecipient]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __getitem__(self, index: int | slice) -> NotificationRecipient | NotifyList:
        items = list(self._items)
        if isinstance(index, slice):
            return NotifyList(items[index])
        return items[index]

    @staticmethod
    def _checked(item: Any) -> NotificationRecipient:
        """``item`` itself, once it is known to be a :class:`NotificationRecipient` (TypeError otherwise)."""
        validate_notificationrecipient(item)
        return item

    def add(self, recipient: NotificationRecipient) -> bool:
        """Add ``recipient``; True if it was not already present."""
        if self._checked(recipient) in self._items:
            return False
        self._items[recipient] = None
        return True

    append = add

    def discard(self, recipient: NotificationRecipient) -> bool:
        return self._items.pop(self._checked(recipient), False) is None

    def update(self, sequence: Iterable[NotificationRecipient]) -> bool:
        results = [self.add(recipient) for recipient in sequence]
        return any(results)

    def difference(self, sequence: Iterable[NotificationRecipient]) -> NotifyList:
        others = set(sequence)
        return NotifyList(r for r in self._items if r not in others)

    def issubset(self, sequence: Iterable[NotificationRecipient]) -> bool:
        return set(self._items).issubset(sequence)

    def issuperset(self, sequence: Iterable[NotificationRecipient]) -> bool:
        return set(self._items).issuperset(sequence)

    def union(self, sequence: Iterable[NotificationRecipient]) -> NotifyList:
        additions = [self._checked(item) for item in sequence]
        return NotifyList([*self._items, *additions])

    def _filter(self, predicate: Any) -> NotifyList:
        return NotifyList(r for r in self._items if predicate(r))

    def filter_by_failed(self) -> NotifyList:
        """Recipients whose notification was attempted and did not succeed."""
        return self._filter(lambda r: r.notification_attempted and not r.notification_succeeded)

    def filter_by_succeeded(self) -> NotifyList:
        return self._filter(lambda r: r.notification_succeeded)

    def filter_by_notify_type(self, notify_type: NotificationRecipientType) -> NotifyList:
        validate_recipienttype(notify_type)
        return self._filter(lambda r: r.notify_type is notify_type)

    @classmethod
    def from_collection(cls, recipient_strings: Iterable[str]) -> NotifyList:
        return cls(NotificationRecipient.from_string(s) for s in recipient_strings)

    def set_notification_attempted(self) -> None:
        for recipient in self._items:
            recipient.notification_attempted = True

    def set_error(self, error: Exception) -> None:
        for recipient in self._items:
            recipient.error = error

    def update_from_error_dict(self, error_dict: dict) -> None:
        """Mark recipients in ``{address: (code, message)}`` as failed and every other recipient as succeeded."""
        if not isinstance(error_dict, dict):
            raise TypeError(f"object '{error_dict}' must be of type '{dict}'")
        for recipient in self._items:
            if recipient.address in error_dict:
                code, message = error_dict[recipient.address]
                if isinstance(message, bytes):
                    message = message.decode("utf-8", errors="replace")
                recipient.error = NotificationFailedError(f"{code}: {message}")
            else:
                recipient.notification_succeeded = True


validate_notifylist: Validator = validate_type(NotifyList)


# ---------------------------------------------------------------------------------------------------------------------
# factories


def get_notify_runner(
    notification_data: dict, config: Any, logger: Any, notify_params: dict | None = None
) -> NotifyRunnerAdapter:
    """The runner that dispatches recipient strings to the runner of their protocol."""
    return NotifyRunnerAdapter(notification_data, config, logger, notify_params=notify_params)


def get_child_notify_runner(
    recipient_type: NotificationRecipientType, notification_data: dict, config: Any, logger: Any
) -> BaseNotifyRunner:
    """The runner for one recipient type."""
    validate_recipienttype(recipient_type)
    runner_class = {
        NotificationRecipientType.EMAIL: EmailNotifyRunner,
        NotificationRecipientType.SNS: SnsNotifyRunner,
        NotificationRecipientType.INVALID: LogFailuresNotifyRunner,
    }[recipient_type]
    return runner_class(notification_data, config, logger)


def smtp_server_init(host: str, port: int, timeout: float) -> smtplib.SMTP | Exception:
    """Connect to the SMTP server; return the connection, or the exception raised while connecting."""
    try:
        return smtplib.SMTP(host=host, port=port, timeout=timeout)
    except Exception as exc:  # returned, not raised: the caller records it per recipient
        return exc


# ---------------------------------------------------------------------------------------------------------------------
# runners


class BaseNotifyRunner(BaseStepRunner):
    """Holds the notification data and renders the tables and message bodies from it."""

    def __init__(self, notification_data: dict | None, config: Any, logger: Any) -> None:
        super().__init__(config, logger)
        self.notification_data = notification_data if notification_data is not None else {}
        self.error: Exception | None = None

    @property
    def logger(self) -> Any:
        return self._get_logger()

    @cached_property
    def template_values(self) -> dict:
        """The notification data plus the four rendered tables."""
        values = dict(self.notification_data)
        values.update(self._get_file_tables())
        return values

    @cached_property
    def message_parts(self) -> tuple[str, str]:
        """``(text, html)`` message bodies rendered from the configured templates."""
        templating = self._config.pipeline_config["templating"]
        renderer = TemplateRenderer()
        text = renderer.render(templating["text_notification_template"], self.template_values)
        html_body = renderer.render(templating["html_notification_template"], self.template_values)
        return text, html_body

    def _get_file_tables(self) -> dict[str, str]:
        data = self.notification_data
        rows = [(title, data.get(key)) for title, key in INPUT_FILE_TABLE_ROWS]
        text_input = os.linesep.join(f"{title}: {value}" for title, value in rows)
        html_lines = ["<table><tbody>"]
        html_lines.extend(
            f'<tr><th style="text-align: left">{html.escape(title)}</th>'
            f'<td style="text-align: left">{html.escape(str(value))}</td></tr>'
            for title, value in rows
        )
        html_lines.append("</tbody></table>")

        headers = data.get("collection_headers") or []
        collection_rows = data.get("collection_data") or []
        columns = [(key, title) for key, title in COLLECTION_TABLE_COLUMNS if key in headers]
        if collection_rows and columns:
            from tabulate import tabulate

            table = [[row.get(key) for key, _ in columns] for row in collection_rows]
            titles = [title for _, title in columns]
            text_collection = tabulate(table, headers=titles, tablefmt="simple")
            html_collection = tabulate(table, headers=titles, tablefmt="html")
        else:
            text_collection = html_collection = ""

        return {
            "text_input_file_table": text_input,
            "html_input_file_table": os.linesep.join(html_lines),
            "text_collection_table": text_collection,
            "html_collection_table": html_collection,
        }

    @staticmethod
    def _finish(recipients: NotifyList) -> NotifyList:
        """Mark every recipient as attempted and hand the list back."""
        recipients.set_notification_attempted()
        return recipients

    def _give_up(self, recipients: NotifyList, error: Exception) -> NotifyList:
        """Record ``error`` for the runner and every recipient, then finish the list."""
        self.error = error
        recipients.set_error(error)
        return self._finish(recipients)

    def _subject(self) -> str:
        subject = self._config.pipeline_config["mail"]["subject"].format(**self.template_values)
        return " ".join(subject.split())  # no line breaks (header injection) or runs of blanks

    def run(self, notify_list: NotifyList) -> NotifyList:  # pragma: no cover - abstract
        raise NotImplementedError


class LogFailuresNotifyRunner(BaseNotifyRunner):
    """Record recipients that cannot be notified in the log (used for ``INVALID`` recipients)."""

    def run(self, notify_list: NotifyList) -> NotifyList:
        validate_notifylist(notify_list)
        self.logger.warning("recipients unable to be notified: %s", [r.raw_string for r in notify_list])
        return self._finish(notify_list)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmailNotifyRunner(BaseNotifyRunner):
    """Send one multipart e-mail to every e-mail recipient.

    The message is ``multipart/mixed``: a ``multipart/alternative`` with a ``text/plain`` part and a
    ``multipart/related`` HTML part, plus ``error_logs.zip`` when files failed their checks with a log.

    SMTP session: connect to ``mail.smtp_server``:``mail.smtp_port`` (default 587), ``EHLO``, ``STARTTLS`` (with
    certificate verification) when the server advertises it, log in only when ``mail.smtp_user`` is non-empty.
    Credentials are never sent over an unencrypted connection to a non-loopback server: if such a server does not
    offer STARTTLS, the run fails for every recipient. The password never appears in logs or recorded errors.
    """

    def _mail_config(self) -> dict:
        return self._config.pipeline_config["mail"]

    def _redact(self, text: str) -> str:
        password = self._mail_config().get("smtp_pass")
        return text.replace(password, "***") if password else text

    def _safe_error(self, exc: Exception) -> Exception:
        """``exc``, or a :class:`NotificationFailedError` with the password redacted if its text contains it."""
        password = self._mail_config().get("smtp_pass")
        if password and password in str(exc):
            return NotificationFailedError(self._redact(format_exception(exc)))
        return exc

    def _error_log_attachment(self) -> MIMEApplication | None:
        rows = [
            row for row in (self.notification_data.get("collection_data") or [])
            if row.get("check_log") and row.get("check_passed") != "True"
        ]
        if not rows:
            return None
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for row in rows:
                archive.writestr(f"{os.path.basename(str(row.get('name')))}.log.txt", row["check_log"])
        attachment = MIMEApplication(buffer.getvalue(), "zip", policy=email_policy.SMTP)
        attachment.add_header("Content-Disposition", "attachment", filename="error_logs.zip")
        return attachment

    def build_message(self, addresses: list[str]) -> MIMEMultipart:
        """The complete e-mail for ``addresses``."""
        mail = self._mail_config()
        text, html_body = self.message_parts
        policy = email_policy.SMTP
        message = MIMEMultipart("mixed", policy=policy)
        message["From"] = mail["from"]
        message["To"] = ", ".join(addresses)
        message["Subject"] = self._subject()

        alternative = MIMEMultipart("alternative", policy=policy)
        alternative.attach(MIMEText(text, "plain", "utf-8", policy=policy))
        related = MIMEMultipart("related", policy=policy)
        related.attach(MIMEText(html_body, "html", "utf-8", policy=policy))
        alternative.attach(related)
        message.attach(alternative)

        attachment = self._error_log_attachment()
        if attachment is not None:
            message.attach(attachment)
        return message

    def run(self, notify_list: NotifyList) -> NotifyList:
        validate_notifylist(notify_list)
        mail = self._mail_config()
        addresses = [recipient.address for recipient in notify_list]
        try:
            message = self.build_message(addresses)
        except Exception as exc:
            self._fail(notify_list, exc, "unable to build the notification e-mail")
            return notify_list

        host = mail["smtp_server"]
        port = mail.get("smtp_port") or DEFAULT_SMTP_PORT
        server = smtp_server_init(host, port, SMTP_TIMEOUT)
        if isinstance(server, Exception):
            self._fail(notify_list, server, f"unable to connect to SMTP server '{host}:{port}'")
            return notify_list

        try:
            refused = self._send(server, host, mail, addresses, message)
        except smtplib.SMTPRecipientsRefused as exc:
            notify_list.update_from_error_dict(exc.recipients)
        except Exception as exc:
            self._fail(notify_list, exc, "sending the notification e-mail failed")
        else:
            notify_list.update_from_error_dict(refused)
        finally:
            try:
                server.quit()
            except smtplib.SMTPServerDisconnected:
                pass
            except Exception as exc:
                self.logger.warning("error closing the SMTP connection: %s", self._redact(format_exception(exc)))
        return self._finish(notify_list)

    def _send(self, server: Any, host: str, mail: dict, addresses: list[str], message: MIMEMultipart) -> dict:
        server.ehlo()
        encrypted = False
        if server.has_extn("starttls"):
            # a verifying context: smtplib's default would accept any certificate
            server.starttls(context=ssl.create_default_context())
            server.ehlo()
            encrypted = True
        user = mail.get("smtp_user")
        if user:
            if not encrypted and not _is_loopback(host):
                raise NotificationFailedError(
                    f"SMTP server '{host}' does not offer STARTTLS; refusing to send credentials unencrypted"
                )
            server.login(user, mail.get("smtp_pass", ""))
        return server.sendmail(mail["from"], addresses, message.as_bytes())

    def _fail(self, notify_list: NotifyList, exc: Exception, context: str) -> None:
        self.logger.error("%s: %s", context, self._redact(format_exception(exc)))
        self._give_up(notify_list, self._safe_error(exc))


class SnsNotifyRunner(BaseNotifyRunner):
    """Publish the text message to each SNS topic (the recipient address is the topic ARN).

    Uses boto3's default credential chain and endpoint (``AWS_ENDPOINT_URL`` is honoured). The subject is the
    configured mail subject, reduced to what SNS accepts (one line, ASCII, at most 100 characters).
    """

    def _sns_subject(self) -> str:
        subject = self._subject().encode("ascii", errors="replace").decode("ascii")
        return subject[:SNS_SUBJECT_MAX] or "aodncore notification"

    def _sns_message(self) -> str:
        text = self.message_parts[0]
        encoded = text.encode("utf-8")
        if len(encoded) <= SNS_MESSAGE_MAX_BYTES:
            return text
        note = f"{os.linesep}[message truncated]"
        return encoded[: SNS_MESSAGE_MAX_BYTES - len(note)].decode("utf-8", errors="ignore") + note

    def run(self, notify_list: NotifyList) -> NotifyList:
        validate_notifylist(notify_list)
        try:
            import boto3

            client = boto3.client("sns", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
            subject, message = self._sns_subject(), self._sns_message()
        except Exception as exc:
            self.logger.error("unable to prepare SNS notification: %s", format_exception(exc))
            return self._give_up(notify_list, exc)

        for recipient in notify_list:
            recipient.notification_attempted = True
            try:
                client.publish(TopicArn=recipient.address, Subject=subject, Message=message)
            except Exception as exc:
                self.logger.error("unable to publish to SNS topic '%s': %s", recipient.address, format_exception(exc))
                recipient.error = NotificationFailedError(format_exception(exc))
            else:
                recipient.notification_succeeded = True
        return notify_list


class NotifyRunnerAdapter(BaseNotifyRunner):
    """Parse recipient strings and hand each protocol's recipients to its runner. Never raises for failures."""

    def __init__(self, notification_data: dict | None, config: Any, logger: Any, notify_params: dict | None = None):
        super().__init__(notification_data, config=config, logger=logger)
        self.notify_params = notify_params

    def run(self, recipient_strings: Iterable[str]) -> NotifyList:
        notify_list = NotifyList.from_collection(recipient_strings)

        invalid = notify_list.filter_by_notify_type(NotificationRecipientType.INVALID)
        for recipient in invalid:
            self.logger.error("invalid recipient '%s': %s", recipient.raw_string, recipient.error)
        invalid.set_notification_attempted()

        for notify_type in (NotificationRecipientType.EMAIL, NotificationRecipientType.SNS):
            sub_list = notify_list.filter_by_notify_type(notify_type)
            if not sub_list:
                continue
            runner = get_child_notify_runner(notify_type, self.notification_data, self._config, self._logger)
            try:
                runner.run(sub_list)
            except Exception as exc:
                self.logger.error("%s notification failed: %s", notify_type.name, format_exception(exc))
                sub_list.set_error(exc)
                sub_list.set_notification_attempted()

        failed = notify_list.filter_by_failed()
        succeeded = notify_list.filter_by_succeeded()
        if failed:
            self.logger.error(
                "failed to notify: %s", [f"{r.raw_string} ({r.error})" for r in failed]
            )
        if succeeded:
            self.logger.info("successfully notified: %s", [r.raw_string for r in succeeded])
        if not failed:
            self.logger.info("all notification attempts were successful")
        return notify_list

