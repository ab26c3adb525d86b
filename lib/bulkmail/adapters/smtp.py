"""An SMTP server (the seed's smtp_server, smtp_port) as a transport, errors classified as SES's are.

One connection per transport: the worker makes one transport per campaign per invocation, so a batch
of recipients goes over one connection, opened at the first send and closed by `close()`. STARTTLS
is used whenever the server offers it (port 465: TLS from the start); a login is never sent in clear.

Replies:  421 (closing, try later), 454 (temporary failure, e.g. TLS or auth) → Throttled: the
message comes back later, nothing is counted.  Other 4xx (450 mailbox busy, 451 local error,
452 storage) → TransientSendError: bounded retries, then failed.  5xx → PermanentSendError: failed at
once with the reply.  A rejected login (535 …) or a refused sender (5xx to MAIL FROM) → SendingPaused:
no recipient can be sent to, so the campaign pauses instead of failing everyone.  A lost connection →
TransientSendError.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import Message

from bulkmail.errors import PermanentSendError, SendingPaused, Throttled, TransientSendError

logger = logging.getLogger(__name__)

THROTTLE_CODES = frozenset({421, 454})
# Message submission (RFC 6409) with STARTTLS: Lambda cannot reach port 25 (AWS blocks it by default).
SUBMISSION_PORT = 587
IMPLICIT_TLS_PORT = 465
DEFAULT_TIMEOUT_SECONDS = 30.0


def classify(code: int, reply: bytes | str) -> Exception:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    message = f"SMTP {code}: {text}".strip()
    if code in THROTTLE_CODES:
        return Throttled(message)
    if 400 <= code < 500:
        return TransientSendError(message)
    if 500 <= code < 600:
        return PermanentSendError(message)
    return TransientSendError(message)


class SmtpTransport:
    def __init__(
        self,
        host: str,
        port: int = SUBMISSION_PORT,
        *,
        username: str = "",
        password: str = "",
        tls_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if not host:
            raise ValueError("an SMTP transport needs a server")
        self.host = host
        self.port = int(port)
        self.username = username
        self._password = password
        self.tls_context = tls_context or ssl.create_default_context()  # verifying
        self.timeout = timeout
        self._conn: smtplib.SMTP | None = None
        self.connections_opened = 0

    def __repr__(self) -> str:  # never show the password
        return f"SmtpTransport(host={self.host!r}, port={self.port}, username={self.username!r})"

    # --- connection --------------------------------------------------------------------------------
    def _open(self) -> smtplib.SMTP:
        if self.port == IMPLICIT_TLS_PORT:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=self.tls_context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            encrypted = self.port == IMPLICIT_TLS_PORT
            if not encrypted and conn.has_extn("starttls"):
                conn.starttls(context=self.tls_context)
                conn.ehlo()
                encrypted = True
            if self.username:
                if not encrypted:
                    raise SendingPaused(
                        f"SMTP server {self.host}:{self.port} does not offer STARTTLS: the login is not sent in clear"
                    )
                try:
                    conn.login(self.username, self._password)
                except smtplib.SMTPAuthenticationError as exc:
                    if exc.smtp_code in THROTTLE_CODES:
                        raise classify(exc.smtp_code, exc.smtp_error) from None
                    raise SendingPaused(f"SMTP login as {self.username!r} rejected: {exc.smtp_code}") from None
        except BaseException:
            _quietly_close(conn)
            raise
        self.connections_opened += 1
        return conn

    def _connection(self) -> smtplib.SMTP:
        if self._conn is None:
            try:
                self._conn = self._open()
            except smtplib.SMTPResponseException as exc:
                raise classify(exc.smtp_code, exc.smtp_error) from None
            except smtplib.SMTPNotSupportedError as exc:
                raise SendingPaused(f"SMTP server {self.host}:{self.port}: {exc}") from None
            except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS failure, disconnected
                raise TransientSendError(f"SMTP connection to {self.host}:{self.port} failed: {exc!r}") from None
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            _quietly_close(conn)

    # --- Transport -------------------------------------------------------------------------------
    def send(self, message: Message) -> str:
        conn = self._connection()
        try:
            refused = conn.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()), (550, b"recipient refused"))
            if code == 421:
                self._drop()
            raise classify(code, reply) from None
        except smtplib.SMTPSenderRefused as exc:
            if exc.smtp_code in THROTTLE_CODES or 400 <= exc.smtp_code < 500:
                raise classify(exc.smtp_code, exc.smtp_error) from None
            # The server refuses the sender itself (not allowed to send as it, authentication
            # required): no recipient can be sent to, so the campaign pauses.
            raise SendingPaused(
                f"SMTP {exc.smtp_code}: sender {exc.sender!r} refused: "
                f"{exc.smtp_error.decode('utf-8', 'replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
            ) from None
        except smtplib.SMTPResponseException as exc:  # DATA refused
            if exc.smtp_code == 421:
                self._drop()
            raise classify(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise TransientSendError(f"SMTP connection to {self.host}:{self.port} lost: {exc!r}") from None
        if refused:  # only with several recipients; bulkmail sends one per message
            code, reply = next(iter(refused.values()))
            raise classify(code, reply)
        return str(message["Message-ID"] or "")

    def close(self) -> None:
        self._drop()


def _quietly_close(conn: smtplib.SMTP) -> None:
    """QUIT, or just drop the socket if the server is already gone (nothing left to report)."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError) as exc:
        logger.debug("SMTP QUIT failed; closing the socket", extra={"error": repr(exc)})
        conn.close()
