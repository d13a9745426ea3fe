"""The weekly report as a MIME message, and SMTP sending (named ``mailer`` so it never shadows ``email``).

Message layout (what mail clients expect of an HTML mail with inline images)::

    multipart/alternative
    ├── text/plain; charset=utf-8            the whole report as readable text
    └── multipart/related
        ├── text/html; charset=utf-8         table layout, inline styles, images as cid: references
        └── image/png (Content-ID) …         one per chart, inline

Headers are encoded by the ``email`` package (RFC 2047 for the Japanese subject and sender name).
``List-Unsubscribe`` is always present: a ``mailto:`` to the sender, and an https one-click link
(RFC 8058, with ``List-Unsubscribe-Post``) when the service's public URL is configured.

SMTP errors are translated here, once, into :class:`MailError`: ``transient`` for what a later attempt may
cure (4xx replies, refused or dropped connections, timeouts), permanent for 5xx replies (unknown recipient,
rejected sender, failed authentication), which are not retried.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path

from pipelines.errors import ConfigError, KoeError
from pipelines.report.charts import Chart
from pipelines.report.weekly import WeeklyReport
from pipelines.report.weekly_render import (
    render_weekly_html,
    render_weekly_text,
    weekly_charts,
    weekly_subject,
)
from service.config import Settings

__all__ = ["MailError", "PreparedReport", "SmtpConfig", "build_message", "prepare_report", "send_message"]

_DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
SENDER_NAME = "koe 週次レポート"


class MailError(KoeError):
    """Sending failed. ``transient``: a later attempt may succeed; ``code``: the SMTP reply code, if any."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # none | starttls | ssl
    sender: str  # 'name <addr>' or 'addr'
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        if not settings.smtp_host:
            raise ConfigError("KOE_SMTP_HOST is not set: set it (and KOE_SMTP_SENDER) or use --dry-run")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port or _DEFAULT_PORTS[settings.smtp_security],
            security=settings.smtp_security,
            sender=sender_address(settings),
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout,
        )


def sender_address(settings: Settings) -> str:
    if not settings.smtp_sender:
        raise ConfigError("KOE_SMTP_SENDER is not set: the From address of reports, e.g. koe@example.com")
    return settings.smtp_sender


def _address(text: str, default_name: str = "") -> Address:
    name, addr = parseaddr(text)
    if "@" not in addr:
        raise ConfigError("not an e-mail address", value=text)
    local, _, domain = addr.rpartition("@")
    return Address(display_name=name or default_name, username=local, domain=domain)


@dataclass(frozen=True)
class PreparedReport:
    """What every recipient's message shares: the report, its subject, its text and its charts (drawn once)."""

    report: WeeklyReport
    subject: str
    charts: Sequence[Chart]


def prepare_report(report: WeeklyReport) -> PreparedReport:
    return PreparedReport(report, weekly_subject(report), weekly_charts(report))


def build_message(
    prepared: PreparedReport,
    *,
    sender: str,
    to: str,
    unsubscribe_url: str | None = None,
    now: datetime | None = None,
) -> EmailMessage:
    """The complete message to one recipient (each has an unsubscribe link of their own)."""
    from_addr = _address(sender, SENDER_NAME)
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = prepared.subject
    msg["From"] = from_addr
    msg["To"] = _address(to)
    msg["Date"] = format_datetime(now or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(idstring=f"koe-weekly-{prepared.report.week}", domain=from_addr.domain)
    unsubscribe = [f"<mailto:{from_addr.addr_spec}?subject=unsubscribe%20weekly%20report>"]
    if unsubscribe_url:
        unsubscribe.insert(0, f"<{unsubscribe_url}>")
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Unsubscribe"] = ", ".join(unsubscribe)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    msg["X-Koe-Report-Week"] = prepared.report.week

    cids = {c.key: make_msgid(idstring=c.key, domain="koe.report") for c in prepared.charts}
    html = render_weekly_html(
        prepared.report,
        prepared.charts,
        {key: "cid:" + cid[1:-1] for key, cid in cids.items()},
        unsubscribe_url=unsubscribe_url,
    )
    text = render_weekly_text(prepared.report, unsubscribe_url=unsubscribe_url)
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
    html_part = next(part for part in msg.iter_parts() if part.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)
    for chart in prepared.charts:
        html_part.add_related(
            chart.png, "image", "png", cid=cids[chart.key], filename=f"{chart.key}.png", disposition="inline"
        )
    return msg


def write_eml(msg: EmailMessage, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msg.as_bytes(policy=SMTP))
    return path


def send_message(msg: EmailMessage, config: SmtpConfig) -> str:
    """Send through the configured server; returns the Message-ID. Raises :class:`MailError`."""
    where = f"{config.host}:{config.port}"
    try:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if config.security == "ssl":
            smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout, context=context)
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.user:
                smtp.login(config.user, config.password or "")
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items())
        transient = all(400 <= c < 500 for c in codes)
        raise MailError(
            f"{where} refused the recipient ({detail})", transient=transient, code=codes[0]
        ) from exc
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed …
        code = int(exc.smtp_code)
        raise MailError(
            f"{where} answered {code} {_text(exc.smtp_error)}", transient=400 <= code < 500, code=code
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"{where}: {exc} (check KOE_SMTP_SECURITY)", transient=False) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused/dropped connection, timeout, TLS handshake
        raise MailError(
            f"cannot deliver through {where}: {exc or type(exc).__name__}", transient=True
        ) from exc
    return str(msg["Message-ID"])


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
