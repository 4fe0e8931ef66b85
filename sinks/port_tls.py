"""HTTPS for the read-only SQL port: the server's TLS context from settings, and the per-connection handshake.

Both ``TOUCHPOINT_SINK_SQL_TLS_CERT`` and ``TOUCHPOINT_SINK_SQL_TLS_KEY`` set: the port speaks HTTPS only (TLS 1.2
or later); neither: plain HTTP. Anything in between (one of them, an unreadable file, a key that does not match
the certificate or cannot be decrypted) is one ConfigError at start naming the setting, before the port binds.

TLS encrypts; it does not authenticate: without users the port still binds loopback only (``port_auth.py``).

The handshake runs in the connection's own thread with a deadline (``HANDSHAKE_SECONDS``), never in the accept
loop, so a client that connects and stays silent, or speaks plain HTTP, holds only its own thread until it is
closed, and every other client is served meanwhile.
"""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path
from typing import Any

from touchpoint.errors import ConfigError

log = logging.getLogger(__name__)

ENV_CERT = "TOUCHPOINT_SINK_SQL_TLS_CERT"
ENV_KEY = "TOUCHPOINT_SINK_SQL_TLS_KEY"
ENV_PASSWORD = "TOUCHPOINT_SINK_SQL_TLS_KEY_PASSWORD"
# Long enough for a client across a slow link; short enough that silent connections give their thread back soon.
HANDSHAKE_SECONDS = 10.0


def server_context(settings: Any) -> ssl.SSLContext | None:
    """The port's server-side TLS context, or None for plain HTTP; ConfigError (one line, naming the setting and
    what to do, never the key password) when the settings cannot make one."""
    cert: Path | None = getattr(settings, "sink_sql_tls_cert", None)
    key: Path | None = getattr(settings, "sink_sql_tls_key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = (ENV_CERT, ENV_KEY) if key is None else (ENV_KEY, ENV_CERT)
        raise ConfigError(f"{given} is set but {missing} is not: set both (the read-only SQL port's PEM certificate "
                          "and its private key) for HTTPS, or neither for plain HTTP")
    for path, variable in ((cert, ENV_CERT), (key, ENV_KEY)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{variable}={path} cannot be read ({exc.strerror or exc}); point it at a readable "
                              "PEM file, or unset both TLS settings for plain HTTP") from None
    secret = getattr(settings, "sink_sql_tls_key_password", None)
    password = secret.get_secret_value() if secret is not None else ""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # A callable, never None: with None, OpenSSL would prompt on the terminal for an encrypted key's password.
        context.load_cert_chain(str(cert), str(key), password=lambda: password)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"{ENV_CERT}={cert} and {ENV_KEY}={key} are not a PEM certificate and its matching "
                          f"private key ({reason}); if the key is encrypted, set {ENV_PASSWORD} "
                          f"(or {ENV_PASSWORD}_FILE)") from None
    return context


def handshake(context: ssl.SSLContext, sock: socket.socket, peer: Any) -> ssl.SSLSocket | None:
    """The connection after a completed server-side handshake, or None (connection closed, logged) when the client
    did not complete one within ``HANDSHAKE_SECONDS``: a plain-HTTP client, a client that does not trust the
    certificate, a silent one. ``sock`` belongs to the returned socket afterwards (it is detached from ``sock``)."""
    sock.settimeout(HANDSHAKE_SECONDS)
    try:
        tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    except OSError as exc:  # the client is already gone
        log.debug("read-only SQL port: connection from %s closed before TLS (%s)", peer, exc)
        return None
    try:
        tls.do_handshake()
    except (ssl.SSLError, OSError) as exc:  # socket.timeout is an OSError
        reason = getattr(exc, "reason", None) or type(exc).__name__
        log.info("read-only SQL port: no TLS handshake with %s (%s); the port speaks HTTPS only", peer, reason)
        tls.close()
        return None
    return tls
