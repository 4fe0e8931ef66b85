"""A TLS-terminating TCP proxy on loopback: https in front of a plain-HTTP port (the sink's read-only ClickHouse
port), so a test can speak https to a ClickHouse-compatible server. Optionally requires client certificates."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from pathlib import Path
from types import TracebackType


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class TlsProxy:
    """``with TlsProxy(upstream_port, cert_pem, key_pem) as proxy:`` -> https on ``127.0.0.1:proxy.port``."""

    def __init__(self, upstream_port: int, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        if client_ca is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(str(client_ca))
        upstream = upstream_port

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    tls = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused us or we refused it: the test looks at the client's error
                with socket.create_connection(("127.0.0.1", upstream)) as backend, tls:
                    back = threading.Thread(target=_pump, args=(backend, tls), daemon=True)
                    back.start()
                    _pump(tls, backend)
                    back.join(10)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TlsProxy:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
