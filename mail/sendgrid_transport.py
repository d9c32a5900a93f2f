"""Deliver an `OutgoingEmail` through SendGrid's v3 Mail Send API with the official library.

The library is blocking (urllib underneath), so `SendGridTransport.send` is synchronous; callers
in async code run it in a thread (a Temporal sync activity, or `asyncio.to_thread`).

Every failure ends up as one of two exceptions, so the caller only has to decide "retry or not":
- `EmailRejected`: SendGrid said no for good (a 4xx other than 429). Retrying the same request
  gives the same answer.
- `EmailTemporarilyFailed`: 429, 5xx, or SendGrid could not be reached (refused, reset, timed
  out). Retrying later may work; `retry_after` carries SendGrid's hint when it gave one.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import time
import urllib.error
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import (
    ApiKeyIncludedException,
    Category,
    Content,
    CustomArg,
    From,
    Mail,
    MimeType,
    Subject,
    To,
)

from mail.message import OutgoingEmail

__all__ = ["CATEGORY", "EmailRejected", "EmailTemporarilyFailed", "SendGridTransport"]

_log = logging.getLogger(__name__)

# Category attached to every message, so SendGrid stats and event webhooks can be filtered.
CATEGORY = "info-request"

# Bound the error text we keep: an error page from a proxy can be large HTML.
_MAX_DETAIL_CHARS = 500


class EmailRejected(Exception):
    """SendGrid refused the email permanently (a 4xx other than 429); do not retry as is.

    `status` is the HTTP status, or 0 when the library refused the message before sending it.
    `detail` is SendGrid's `errors[].message` joined with "; ", or the raw body.
    """

    # Positional args only (and passed to Exception) so the exception pickles and copies.
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail)
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        return f"SendGrid rejected the email (HTTP {self.status}): {self.detail}"


class EmailTemporarilyFailed(Exception):
    """Sending failed in a way that may succeed later: 429, 5xx, connection error or timeout.

    `status` is the HTTP status, or None when no HTTP answer came back at all.
    `retry_after` is how many seconds SendGrid asked us to wait (Retry-After, or
    X-RateLimit-Reset relative to now), or None when it gave no hint.
    `maybe_delivered` is True when the request may have reached SendGrid although no answer
    came (a timeout or a connection dropped mid-answer): sending again could send it twice.
    """

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(reason, status, retry_after, maybe_delivered)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered

    def __str__(self) -> str:
        text = "SendGrid temporarily failed"
        if self.status is not None:
            text += f" (HTTP {self.status})"
        text += f": {self.reason}"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g}s"
        return text


class _DropDebugRecords(logging.Filter):
    """python_http_client logs every request's headers (our API key) and payload (the email
    body) at DEBUG; drop those records whatever level the application configures."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def _silence_library_debug_logging() -> None:
    library_log = logging.getLogger("python_http_client.client")
    if not any(isinstance(f, _DropDebugRecords) for f in library_log.filters):
        library_log.addFilter(_DropDebugRecords())


_silence_library_debug_logging()


class SendGridTransport:
    """Sends one `OutgoingEmail` per call through `SendGridAPIClient.send`.

    Safe to share between threads: the underlying client builds a fresh request (and urllib a
    fresh connection) for every call, and nothing here is mutated after `__init__`.
    """

    def __init__(
        self,
        api_key: str,
        *,
        from_email: str,
        from_name: str,
        host: str = "https://api.sendgrid.com",
        timeout_seconds: float = 10.0,
    ) -> None:
        if not api_key:
            # SendGridAPIClient would silently fall back to $SENDGRID_API_KEY; be explicit.
            raise ValueError("api_key must not be empty")
        if not (timeout_seconds > 0 and math.isfinite(timeout_seconds)):
            # python_http_client does `timeout or self.timeout`, so 0 would mean "no timeout".
            raise ValueError("timeout_seconds must be a positive number")
        self._from_email = from_email
        self._from_name = from_name
        self._host = host.rstrip("/")
        self._timeout_seconds = timeout_seconds
        self._client = SendGridAPIClient(api_key=api_key, host=self._host)
        # SendGridAPIClient has no timeout parameter, but its python_http_client.Client does and
        # copies it to every child client it builds for `.mail.send.post(...)`; urllib then
        # applies it to the connect and to each socket read. Without it a hung SendGrid would
        # hold the calling thread forever.
        self._client.client.timeout = timeout_seconds

    def __repr__(self) -> str:
        # Never show the API key, even in a debugger or a crash report.
        return (
            f"SendGridTransport(host={self._host!r}, from_email={self._from_email!r}, "
            f"timeout_seconds={self._timeout_seconds!r})"
        )

    def send(self, email: OutgoingEmail) -> str:
        """Send `email`; return SendGrid's X-Message-Id ("" if the answer had none).

        Raises EmailRejected or EmailTemporarilyFailed; see the module docstring.
        """
        message = self._build_message(email)
        try:
            response = self._client.send(message)
        except HTTPError as exc:
            # python_http_client turns every non-2xx answer into an HTTPError subclass
            # (BadRequestsError, TooManyRequestsError, ...) carrying status_code/body/headers.
            raise _classify_http_error(exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            # No usable HTTP answer: urllib.error.URLError for refused/DNS/TLS/connect timeout
            # (it wraps the OSError raised while sending), a bare TimeoutError when the answer
            # does not come within the timeout, ConnectionResetError/RemoteDisconnected or
            # IncompleteRead when the connection drops mid-answer.
            # Only a failure to connect (URLError) proves the request never left.
            raise EmailTemporarilyFailed(
                _describe_network_error(exc),
                maybe_delivered=not isinstance(exc, urllib.error.URLError),
            ) from exc

        message_id = response.headers.get("X-Message-Id") if response.headers else None
        _log.info(
            "SendGrid accepted email idempotency_key=%s case_id=%s status=%s message_id=%s",
            email.idempotency_key,
            email.case_id,
            response.status_code,
            message_id,
        )
        return str(message_id) if message_id else ""

    def _build_message(self, email: OutgoingEmail) -> Mail:
        # Objects are filled field by field rather than with Email("...") parsing, which would
        # reinterpret an address like "Name <a@b>" or drop the address when the name is empty.
        sender = From()
        sender.email = self._from_email
        if self._from_name:
            sender.name = self._from_name
        recipient = To()
        recipient.email = email.to_email
        if email.to_name:
            recipient.name = email.to_name

        try:
            message = Mail()
            message.from_email = sender
            message.add_to(recipient)
            message.subject = Subject(email.subject)
            message.add_content(Content(MimeType.text, email.text_body))
        except ApiKeyIncludedException as exc:
            # The library refuses bodies that start with something shaped like a SendGrid key;
            # the same body will always be refused, so it is a permanent rejection.
            raise EmailRejected(0, "body looks like a SendGrid API key; not sent") from exc
        # Custom args come back on every SendGrid event (delivered, bounce, ...), which is how
        # an event is traced to the request that caused it.
        message.add_custom_arg(CustomArg("idempotency_key", email.idempotency_key))
        message.add_custom_arg(CustomArg("case_id", email.case_id))
        message.add_category(Category(CATEGORY))
        return message


def _classify_http_error(exc: HTTPError) -> EmailRejected | EmailTemporarilyFailed:
    status = int(exc.status_code)
    detail = _error_detail(exc)
    if status == 429 or not 400 <= status < 500:
        # 429 and 5xx are load or outage on SendGrid's side. Any other status that urllib could
        # not handle (an unfollowed 3xx, say) is not a verdict on the message, so retry it too.
        return EmailTemporarilyFailed(detail, status, _retry_after(exc.headers, time.time()))
    return EmailRejected(status, detail)


def _error_detail(exc: HTTPError) -> str:
    """SendGrid's `{"errors": [{"message": ...}]}` messages, else the raw body, else the reason."""
    raw = exc.body
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw or "")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        messages = [
            str(error["message"])
            for error in parsed["errors"]
            if isinstance(error, dict) and error.get("message")
        ]
        if messages:
            return _clip("; ".join(messages))
    text = text.strip()
    return _clip(text) if text else str(getattr(exc, "reason", "") or "no details")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL_CHARS else text[:_MAX_DETAIL_CHARS] + "..."


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date) or X-RateLimit-Reset (epoch
    seconds, which SendGrid sends on 429s). Never negative; None when neither is usable."""
    if headers is None:
        return None
    retry_after = headers.get("Retry-After")
    if retry_after:
        value = str(retry_after).strip()
        seconds: float | None
        try:
            seconds = float(value)
        except ValueError:
            seconds = _seconds_until_http_date(value, now)
        if seconds is not None and math.isfinite(seconds):
            return max(0.0, seconds)
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            reset_at = float(str(reset).strip())
        except ValueError:
            return None
        if math.isfinite(reset_at):
            return max(0.0, reset_at - now)
    return None


def _seconds_until_http_date(value: str, now: float) -> float | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # HTTP dates are GMT by definition
    return when.timestamp() - now


def _describe_network_error(exc: BaseException) -> str:
    # URLError hides the interesting part (refused, timed out, ...) in `.reason`.
    reason = getattr(exc, "reason", None)
    cause: object = reason if isinstance(reason, BaseException) else exc
    if isinstance(cause, TimeoutError):
        return f"timed out talking to SendGrid: {cause}"
    return f"could not reach SendGrid: {type(cause).__name__}: {cause}"
