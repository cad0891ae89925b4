"""Outgoing e-mail. Messages are queued as jobs inside the caller's transaction (so an e-mail goes
out exactly when the change it announces was committed) and sent by a worker with retries."""
from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy.orm import Session

from .errors import Fatal, Retriable
from .jobs import JobContext, handler

log = logging.getLogger("hub.mail")


def queue_mail(services, session: Session, to: str, subject: str, body: str, *, installation_id: int | None,
               dedupe_key: str | None = None) -> None:
    """`installation_id`: the tenant the message is about (its dead letter shows a failed send)."""
    services.queue.enqueue(session, "mail.send", {"to": to, "subject": subject, "body": body},
                           installation_id=installation_id, dedupe_key=dedupe_key, max_attempts=6)


def send_now(settings, to: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = settings["mail.sender"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="relay-hub")
    message.set_content(body)
    if settings["mail.backend"] == "log":
        log.info("e-mail (mail.backend=log, not sent)\nTo: %s\nSubject: %s\n\n%s", to, subject, body)
        return
    try:
        with smtplib.SMTP(settings["mail.smtp_host"], settings["mail.smtp_port"], timeout=30) as smtp:
            if settings["mail.smtp_starttls"]:
                smtp.starttls()
            if settings["mail.smtp_username"]:
                smtp.login(settings["mail.smtp_username"], settings["mail.smtp_password"])
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise Fatal(f"the mail server refused {to}: {exc.recipients}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise Retriable(f"mail server unavailable: {type(exc).__name__}: {exc}") from None


@handler("mail.send")
def send_mail_job(ctx: JobContext) -> None:
    send_now(ctx.app.extensions["hub"].settings, ctx.payload["to"], ctx.payload["subject"], ctx.payload["body"])
