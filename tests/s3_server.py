"""An S3-compatible server on loopback for the object-storage tests (moto's server mode), and a TCP
relay in front of it that stops dead after a set number of uploaded bytes, as a store that goes away
in the middle of a write does (moto keeps its objects only in memory, so stopping moto itself would
leave nothing to look at afterwards)."""

from __future__ import annotations

import socket
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "orderwatch-test", "AWS_SECRET_ACCESS_KEY": "orderwatch-secret"}


@contextmanager
def s3_server() -> Iterator[str]:
    """A moto S3 server on a free loopback port; yields its endpoint URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # moto's state is per process, not per server: start from an empty store.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)
        yield endpoint
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The standard AWS variables pointing every client (pyarrow, polars, s3fs, boto3) at ``endpoint``."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}


def create_bucket(endpoint: str, bucket: str) -> None:
    keys = {k.lower(): v for k, v in CREDENTIALS.items()}
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, **keys).create_bucket(Bucket=bucket)


class DyingRelay:
    """Relays loopback TCP to ``upstream_port`` until ``cut_after`` bytes have gone upstream, then
    closes every connection and its listening socket: later connections are refused."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.sent = 0
        self.dead = threading.Event()
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.dead.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        try:
            while chunk := src.recv(65536):
                if counted:
                    with self._lock:
                        allowed = max(0, self.cut_after - self.sent)
                        self.sent += len(chunk)
                    if allowed < len(chunk):
                        dst.sendall(chunk[:allowed])
                        self.kill()
                        return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def kill(self) -> None:
        """The server goes away: close the listener and every open connection."""
        self.dead.set()
        with self._lock:
            socks = [self._listener, *self._socks]
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
