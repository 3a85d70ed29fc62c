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
import http.client
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import make_msgid


class ChannelError(Exception):
    """`maybe_sent`: the channel may have taken the message before the error (no answer to it);
    on a channel that cannot dedupe a resend it is recorded `unknown`, not retried."""

    def __init__(self, reason: str, *, permanent: bool = False, maybe_sent: bool = False):
        super().__init__(reason)
        # the channel's own words, kept on the delivery: PostgreSQL takes no NUL in text
        self.reason, self.permanent, self.maybe_sent = reason.replace("\x00", "\ufffd")[:250], permanent, maybe_sent


class EmailSender:
    dedupes = False  # SMTP has no dedupe: an interrupted send is `unknown`

    def __init__(self, config):
        self.config = config
        if not config.get("MAIL_SERVER"):
            raise ChannelError("email not configured (MAIL_SERVER)", permanent=True)

    def send(self, address: str, subject: str, body: str, *, key: str | None = None):
        c = self.config
        msg = EmailMessage()
        domain = c["MAIL_FROM"].rpartition("@")[2] or "localhost"
        try:  # a subject is one line: a line break in it would end the header (or smuggle in another)
            msg["From"], msg["To"], msg["Subject"] = c["MAIL_FROM"], address, " ".join(subject.splitlines())
            msg["Message-ID"] = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
            msg.set_content(body)
        except ValueError as exc:  # an address no header can carry: this message can never go
            raise ChannelError(f"invalid message: {exc}", permanent=True) from None
        smtp_class = smtplib.SMTP_SSL if c.get("MAIL_USE_SSL") else smtplib.SMTP
        stage = {"data": False, "taken": False}
        try:
            with smtp_class(c["MAIL_SERVER"], c["MAIL_PORT"], timeout=c["CHANNEL_TIMEOUT_SECONDS"]) as smtp:
                if c.get("MAIL_USE_TLS"):
                    smtp.starttls(context=ssl.create_default_context())
                if c.get("MAIL_USERNAME"):
                    smtp.login(c["MAIL_USERNAME"], c["MAIL_PASSWORD"])
                data = smtp.data

                def data_sent(*args):  # from here on the server may have the message
                    stage["data"] = True
                    return data(*args)
                smtp.data = data_sent
                smtp.send_message(msg)
                stage["taken"] = True
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"recipient refused: {exc.recipients}", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            if stage["taken"]:  # the server took it; only its goodbye (QUIT) failed: a retry would send it twice
                return
            # no answer once the message was on its way (a timeout, a dropped line): it may have arrived;
            # an answer with a code (SMTPResponseException) is the server saying it did not take it
            maybe_sent = stage["data"] and not isinstance(exc, smtplib.SMTPResponseException)
            raise ChannelError(f"smtp: {type(exc).__name__}: {exc}", maybe_sent=maybe_sent) from None


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
        except http.client.HTTPException as exc:  # an answer cut short or garbled: it may have taken it
            raise ChannelError(f"gateway answer unreadable: {type(exc).__name__}: {exc}") from None


SENDERS = {"email": EmailSender, "sms": SmsGateway}


def sender_for(channel: str, config):
    return SENDERS[channel](config)


def dedupes(channel: str, config) -> bool:
    """Whether a message on this channel may be sent again with the same key after an
    interrupted send (the receiving end drops the repeat)."""
    if channel == "sms":
        return SENDERS["sms"].dedupes and config.get("SMS_GATEWAY_DEDUPE", True)
    return SENDERS[channel].dedupes
