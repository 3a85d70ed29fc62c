"""How a message leaves the building: email over SMTP, SMS through an HTTP gateway.

The outbox needs no sender: every message is a delivery row, listed on the outbox page.
A sender raises ChannelError; `permanent` ones (not configured, address refused) are
not retried.

Exactly once where the channel allows: `send` gets `key`, the delivery's stable send id,
the same on every attempt. The SMS adapter sends it as the `Idempotency-Key` header and
the gateway must accept a repeated key without sending again (answer 2xx as for the
first); then a send interrupted after the gateway's accept is simply sent again. Email
uses it for the Message-ID, which mail systems may dedupe but SMTP does not promise: an
interrupted email is marked `unknown`, not resent. A new adapter sets `dedupes`.
"""
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import make_msgid


class ChannelError(Exception):
    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason, self.permanent = reason[:250], permanent


class EmailSender:
    dedupes = False  # SMTP has no dedupe: an interrupted send is `unknown`

    def __init__(self, config):
        self.config = config
        if not config.get("MAIL_SERVER"):
            raise ChannelError("email not configured (MAIL_SERVER)", permanent=True)

    def send(self, address: str, subject: str, body: str, *, key: str | None = None):
        c = self.config
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = c["MAIL_FROM"], address, subject
        domain = c["MAIL_FROM"].rpartition("@")[2] or "localhost"
        msg["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
        msg.set_content(body)
        smtp_class = smtplib.SMTP_SSL if c.get("MAIL_USE_SSL") else smtplib.SMTP
        taken = False
        try:
            with smtp_class(c["MAIL_SERVER"], c["MAIL_PORT"], timeout=c["CHANNEL_TIMEOUT_SECONDS"]) as smtp:
                if c.get("MAIL_USE_TLS"):
                    smtp.starttls(context=ssl.create_default_context())
                if c.get("MAIL_USERNAME"):
                    smtp.login(c["MAIL_USERNAME"], c["MAIL_PASSWORD"])
                smtp.send_message(msg)
                taken = True
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"recipient refused: {exc.recipients}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            if taken:  # the server took the message; only its goodbye (QUIT) failed: a retry would send it twice
                return
            raise ChannelError(f"smtp: {type(exc).__name__}: {exc}") from None


class SmsGateway:
    """The HTTP adapter. A different provider gets its own class with the same `send`."""
    dedupes = True  # the gateway dedupes by Idempotency-Key (SMS_GATEWAY_DEDUPE=0 if yours does not)

    def __init__(self, config):
        self.config = config
        if not config.get("SMS_GATEWAY_URL"):
            raise ChannelError("sms not configured (SMS_GATEWAY_URL)", permanent=True)

    def send(self, address: str, subject: str, body: str, *, key: str | None = None):
        c = self.config
        payload = json.dumps({"to": address, "text": body, "sender": c.get("SMS_SENDER", "")}).encode()
        request = urllib.request.Request(c["SMS_GATEWAY_URL"], data=payload, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {c.get('SMS_GATEWAY_TOKEN', '')}",
                                                  **({"Idempotency-Key": key} if key else {})})
        try:
            with urllib.request.urlopen(request, timeout=c["CHANNEL_TIMEOUT_SECONDS"]) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode(errors="replace")
            # 4xx: the gateway refused this message (bad number, content); retrying will not help
            raise ChannelError(f"gateway {exc.code}: {detail}", permanent=400 <= exc.code < 500 and
                               exc.code != 429) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ChannelError(f"gateway unreachable: {getattr(exc, 'reason', exc)}") from None


SENDERS = {"email": EmailSender, "sms": SmsGateway}


def sender_for(channel: str, config):
    return SENDERS[channel](config)


def dedupes(channel: str, config) -> bool:
    """Whether a message on this channel may be sent again with the same key after an
    interrupted send (the receiving end drops the repeat)."""
    if channel == "sms":
        return SENDERS["sms"].dedupes and config.get("SMS_GATEWAY_DEDUPE", True)
    return SENDERS[channel].dedupes
