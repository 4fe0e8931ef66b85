"""ClickHouse settings -> ``clickhouse_connect.get_client`` arguments (the one conversion; ``Settings.clickhouse_kwargs``).

``CLICKHOUSE_DSN`` says where and who: ``chdb:///path`` (embedded), ``http://user:password@host:8123/`` or
``https://user:password@host:8443/`` (a server; https encrypts and checks the server's certificate). Characters of
the password that have a meaning in a URL are percent-encoded (``@`` -> ``%40``). The TLS details of an https
server come from their own settings, as clickhouse-connect names them:

- ``TOUCHPOINT_CLICKHOUSE_CA_FILE`` -> ``ca_cert``: the CA (PEM) that signed the server's certificate (unset: the
  system trust store);
- ``TOUCHPOINT_CLICKHOUSE_CLIENT_CERT`` / ``TOUCHPOINT_CLICKHOUSE_CLIENT_KEY`` -> ``client_cert`` /
  ``client_cert_key``: a client certificate for servers that require one (mutual TLS);
- ``TOUCHPOINT_CLICKHOUSE_VERIFY`` -> ``verify``: check the server's certificate (leave on outside a test bench).

The DSN's scheme is passed on as ``interface``: clickhouse-connect itself ignores a DSN's scheme and picks TLS from
the port alone (443/8443), so ``https://host:8123`` would otherwise go out as plain http, password included.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from touchpoint.errors import ConfigError

if TYPE_CHECKING:
    from touchpoint.config import Settings


def _pem(path: Path | None, variable: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f"{variable}={path} is not a readable file; point it at the PEM file or unset it")
    return str(path)


def clickhouse_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``clickhouse_connect.get_client``: the DSN, plus the TLS options of an https server."""
    dsn = settings.dsn
    kwargs: dict[str, Any] = {"dsn": dsn}
    tls = {
        "ca_cert": _pem(settings.clickhouse_ca_file, "TOUCHPOINT_CLICKHOUSE_CA_FILE"),
        "client_cert": _pem(settings.clickhouse_client_cert, "TOUCHPOINT_CLICKHOUSE_CLIENT_CERT"),
        "client_cert_key": _pem(settings.clickhouse_client_key, "TOUCHPOINT_CLICKHOUSE_CLIENT_KEY"),
    }
    if dsn.startswith("http://"):
        kwargs["interface"] = "http"
    if not dsn.startswith("https://"):
        given = [name for name, value in tls.items() if value] + ([] if settings.clickhouse_verify else ["verify"])
        if given:
            raise ConfigError(
                f"TLS options for ClickHouse are set ({', '.join(given)}) but CLICKHOUSE_DSN is not https://...; "
                "use an https:// DSN or unset them"
            )
        return kwargs
    if tls["client_cert_key"] and not tls["client_cert"]:
        raise ConfigError("TOUCHPOINT_CLICKHOUSE_CLIENT_KEY is set without TOUCHPOINT_CLICKHOUSE_CLIENT_CERT")
    kwargs["interface"] = "https"
    kwargs["verify"] = settings.clickhouse_verify
    kwargs.update({name: value for name, value in tls.items() if value})
    return kwargs
