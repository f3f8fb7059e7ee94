"""A loopback TCP proxy that can cut the line: the fault injector of the fault tests.

    proxy = FaultProxy("127.0.0.1:8080")     # listens on a free loopback port
    proxy.address                            # "127.0.0.1:<port>": give this to the functions
    proxy.down()                             # outage: refused connections, open ones reset
    proxy.up()                               # the same port accepts again
    proxy.blackhole()                        # partition: connections stay open, nothing gets through
    proxy.close()

Why a proxy and not stopping the emulator: the Firestore emulator keeps its data in
memory only, so stopping and restarting it would wipe the run under test and there
would be nothing left to check for lost or duplicated leads. From the functions'
point of view the proxy's `down()` is the same outage — new connections are refused
and open ones are reset, exactly what a dead server looks like to gRPC — while the
emulator behind it keeps every document (docs/reliability.md).

It forwards bytes and knows nothing of the protocol, so gRPC over HTTP/2 (the
Firestore client) and plain HTTP (the emulator's REST endpoints) both pass through.
One thread runs a selector over every socket; `down()` and `up()` are executed by
that thread, so no socket is ever closed under another thread's feet. Loopback only.

Two more modes: `LatencyProxy` (every byte held `delay` seconds each way: production
latency for the latency benchmark) and `HttpFaultProxy` (an HTTP front answering 429
for N seconds: Cloud Run without an instance, in front of the worker).

Run by hand: `python tools/faultproxy.py --target 127.0.0.1:8080 [--port N]`, then type
`down`, `up`, `blackhole` or `quit` on stdin.
"""

from __future__ import annotations

import argparse
import errno
import os
import queue
import selectors
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024
# Stop reading a side while the other side has this much unsent (backpressure).
HIGH_WATER = 1024 * 1024


@dataclass
class ProxyStats:
    accepted: int = 0  # connections accepted while up
    refused_periods: int = 0  # how many times down() was called
    reset: int = 0  # open connections cut by down()
    upstream_failures: int = 0  # connections the target itself refused
    bytes_up: int = 0  # client → target
    bytes_down: int = 0  # target → client
    bytes_dropped: int = 0  # swallowed by blackhole()


@dataclass(eq=False)
class _Pair:
    client: socket.socket
    upstream: socket.socket
    connected: bool = False  # the non-blocking connect to the target completed
    to_upstream: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    client_eof: bool = False  # the client sent FIN
    upstream_eof: bool = False  # the target sent FIN
    shut_upstream: bool = False  # FIN forwarded to the target
    shut_client: bool = False  # FIN forwarded to the client

    def peer(self, sock: socket.socket) -> socket.socket:
        return self.upstream if sock is self.client else self.client


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `target` ("host:port") until told to go down."""

    def __init__(self, target: str, port: int = 0, start: bool = True):
        host, _, target_port = target.rpartition(":")
        self.target = (host or LOOPBACK, int(target_port))
        self.stats = ProxyStats()
        self._requested_port = port
        self.port = 0
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: set[_Pair] = set()
        self._commands: queue.Queue[tuple[Callable[[], object], queue.Queue]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._blackhole = False
        if start:
            self.start()

    # --- the public controls (any thread) ------------------------------------------------

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._listener is not None and not self._blackhole

    @property
    def state(self) -> str:
        return "down" if self._listener is None else "blackhole" if self._blackhole else "up"

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def start(self) -> "FaultProxy":
        if self._thread is not None:
            return self
        self._listen(self._requested_port)  # in this thread, so a bind error surfaces here
        self._thread = threading.Thread(target=self._loop, name=f"faultproxy:{self.port}", daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        """Stops accepting (connect → refused) and resets every open connection."""
        self._call(self._down)

    def up(self) -> None:
        """Accepts again, on the same port. After a blackhole, the connections that lost bytes are reset."""
        self._call(self._up)

    def blackhole(self) -> None:
        """A network partition: connections are accepted and stay open, but no byte gets through
        in either direction, so callers wait for their deadlines instead of failing fast."""
        self._call(self._start_blackhole)

    def close(self) -> None:
        if self._thread is None:
            return
        self._call(self._down)
        self._stopping = True
        self._wake()
        self._thread.join(5)
        self._thread = None
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the loop thread -------------------------------------------------------------------

    def _call(self, command: Callable[[], object]) -> None:
        """Runs `command` on the loop thread and waits for it (its exception is re-raised here)."""
        if self._thread is None or threading.current_thread() is self._thread:
            command()
            return
        done: queue.Queue = queue.Queue()
        self._commands.put((command, done))
        self._wake()
        error = done.get(timeout=10)
        if error is not None:
            raise error

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _listen(self, port: int) -> None:
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((LOOPBACK, port))
        except OSError:
            listener.close()
            raise
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._selector.register(listener, selectors.EVENT_READ, None)

    def _up(self) -> None:
        if self._blackhole:
            self._blackhole = False
            for pair in list(self._pairs):  # their streams lost bytes: nothing can resume them
                self.stats.reset += 1
                self._drop(pair, reset=True)
        self._listen(self.port)

    def _start_blackhole(self) -> None:
        self._listen(self.port)
        self._blackhole = True
        for pair in self._pairs:
            pair.to_upstream.clear()
            pair.to_client.clear()

    def _down(self) -> None:
        self._blackhole = False
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
            self.stats.refused_periods += 1
        for pair in list(self._pairs):
            self.stats.reset += 1
            self._drop(pair, reset=True)

    def _loop(self) -> None:
        while not self._stopping:
            for key, events in self._selector.select(timeout=1.0):
                sock = key.fileobj
                if sock is self._wake_r:
                    self._run_commands()
                elif sock is self._listener:
                    self._accept()
                else:
                    pair: _Pair = key.data
                    if pair in self._pairs:
                        self._service(pair, sock, events)  # type: ignore[arg-type]
        for pair in list(self._pairs):
            self._drop(pair, reset=True)

    def _run_commands(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while True:
            try:
                command, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception as exc:  # handed back to the caller of down()/up()
                done.put(exc)
            else:
                done.put(None)

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            client.setblocking(False)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = upstream.connect_ex(self.target)
            if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
                self.stats.upstream_failures += 1
                _abort(client)
                upstream.close()
                continue
            self.stats.accepted += 1
            pair = _Pair(client, upstream, connected=(err == 0))
            self._pairs.add(pair)
            self._selector.register(client, selectors.EVENT_READ, pair)
            self._selector.register(upstream, selectors.EVENT_WRITE, pair)

    def _service(self, pair: _Pair, sock: socket.socket, events: int) -> None:
        if sock is pair.upstream and not pair.connected:
            if not events & selectors.EVENT_WRITE:
                return
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.stats.upstream_failures += 1
                self._drop(pair, reset=True)
                return
            pair.connected = True
        try:
            if events & selectors.EVENT_READ:
                self._read(pair, sock)
            if pair in self._pairs and events & selectors.EVENT_WRITE:
                self._write(pair, sock)
        except OSError:
            self._drop(pair, reset=True)
            return
        if pair in self._pairs:
            self._finish_or_rearm(pair)

    def _read(self, pair: _Pair, sock: socket.socket) -> None:
        try:
            data = sock.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        if data and self._blackhole:
            self.stats.bytes_dropped += len(data)
            return
        if sock is pair.client:
            if data:
                pair.to_upstream += data
                self.stats.bytes_up += len(data)
            else:
                pair.client_eof = True
        else:
            if data:
                pair.to_client += data
                self.stats.bytes_down += len(data)
            else:
                pair.upstream_eof = True
        # Write straight away when we can: one select round less per message.
        self._write(pair, pair.peer(sock))

    def _write(self, pair: _Pair, sock: socket.socket) -> None:
        if sock is pair.upstream and not pair.connected:
            return
        buffer = pair.to_upstream if sock is pair.upstream else pair.to_client
        if buffer:
            try:
                sent = sock.send(buffer)
            except (BlockingIOError, InterruptedError):
                return
            del buffer[:sent]

    def _finish_or_rearm(self, pair: _Pair) -> None:
        # Half-close forwarding: a FIN goes on once everything before it was delivered.
        if pair.client_eof and not pair.to_upstream and not pair.shut_upstream and pair.connected:
            _shutdown_write(pair.upstream)
            pair.shut_upstream = True
        if pair.upstream_eof and not pair.to_client and not pair.shut_client:
            _shutdown_write(pair.client)
            pair.shut_client = True
        if pair.shut_upstream and pair.shut_client:
            self._drop(pair, reset=False)
            return
        for sock, outgoing, incoming_eof, peer_backlog in (
            (pair.client, pair.to_client, pair.client_eof, pair.to_upstream),
            (pair.upstream, pair.to_upstream, pair.upstream_eof, pair.to_client),
        ):
            mask = 0
            if not incoming_eof and len(peer_backlog) < HIGH_WATER:
                mask |= selectors.EVENT_READ
            if outgoing or (sock is pair.upstream and not pair.connected):
                mask |= selectors.EVENT_WRITE
            if sock is pair.upstream and not pair.connected:
                mask = selectors.EVENT_WRITE
            self._rearm(sock, mask, pair)

    def _rearm(self, sock: socket.socket, mask: int, pair: _Pair) -> None:
        try:
            registered = self._selector.get_key(sock).events
        except KeyError:
            registered = 0
        if mask == registered:
            return
        if not mask:
            self._selector.unregister(sock)
        elif not registered:
            self._selector.register(sock, mask, pair)
        else:
            self._selector.modify(sock, mask, pair)

    def _drop(self, pair: _Pair, reset: bool) -> None:
        self._pairs.discard(pair)
        for sock in (pair.client, pair.upstream):
            try:
                self._selector.unregister(sock)
            except (KeyError, ValueError):
                pass
            if reset:
                _abort(sock)
            else:
                sock.close()


def _abort(sock: socket.socket) -> None:
    """Closes with RST instead of FIN: the peer sees 'connection reset', as when a server dies."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _shutdown_write(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class LatencyProxy:
    """Forwards 127.0.0.1:`port` to `target`, holding every byte `delay` seconds in each direction.

    Production latency on a loopback emulator: from Cloud Functions to Firestore a round
    trip costs several milliseconds, on the emulator well under one, so a worker that is
    latency-bound in production looks fast here (issue 15). Bytes are delayed, not
    throttled: a chunk read at t leaves at t + delay whatever follows it, so pipelined
    calls (gRPC streams many calls over one connection) overlap as they would on a real
    network. Two threads per direction per connection (reader, delayed writer).
    """

    def __init__(self, target: str, delay: float, port: int = 0):
        host, _, target_port = target.rpartition(":")
        self.target = (host or LOOPBACK, int(target_port))
        self.delay = delay
        self._listener = socket.create_server((LOOPBACK, port))
        self.port = self._listener.getsockname()[1]
        self._closing = False
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, name=f"latencyproxy:{self.port}", daemon=True).start()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _abort(client)
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, upstream]
            self._pipe(client, upstream)
            self._pipe(upstream, client)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()

        def read() -> None:
            while True:
                try:
                    data = source.recv(CHUNK)
                except OSError:
                    data = b""
                chunks.put((time.monotonic() + self.delay, data))
                if not data:
                    return

        def write() -> None:
            while True:
                due, data = chunks.get()
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    _shutdown_write(sink)
                    return
                try:
                    sink.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, daemon=True).start()
        threading.Thread(target=write, daemon=True).start()

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for sock in self._sockets:
            _abort(sock)


class HttpFaultProxy:
    """An HTTP front that answers 429 + Retry-After to everything for a while, then forwards.

    What a Cloud Run service says when no instance can take a request ("429 Too Many
    Requests ... no available instance", Cloud Run troubleshooting page): the worker's
    hand-off must retry it and the sweeper must repair what the retries do not. Point
    WORKER_URL at `url`; `refuse_for(seconds)` starts a storm, `forward()` ends it.
    Requests are forwarded with their method, path, headers and body; `stats` counts both.
    """

    def __init__(self, target_url: str, port: int = 0, retry_after: str = "1"):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import requests

        self.target_url = target_url.rstrip("/")
        self.retry_after = retry_after
        self.refused = 0
        self.forwarded = 0
        self.seen: list[dict[str, str]] = []  # every request's headers, for tests that follow tokens in flight
        self._refuse_until = 0.0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                self._handle()

            def do_GET(self):  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.seen.append(dict(self.headers.items()))
                if time.monotonic() < proxy._refuse_until:
                    proxy.refused += 1
                    payload = b'{"error":{"code":"rate_limited","message":"no available instance"}}'
                    self.send_response(429)
                    self.send_header("Retry-After", proxy.retry_after)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                proxy.forwarded += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                try:
                    answer = requests.request(self.command, proxy.target_url + self.path, headers=headers,
                                              data=body, timeout=600)
                    status, content = answer.status_code, answer.content
                except requests.RequestException:
                    status, content = 502, b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name=f"httpfault:{self.port}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def refuse_for(self, seconds: float) -> None:
        self._refuse_until = time.monotonic() + seconds

    def forward(self) -> None:
        self._refuse_until = 0.0

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Loopback TCP proxy with an off switch (stdin: down, up, blackhole, quit).")
    parser.add_argument("--target", default=os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=None, help="latency mode: hold each byte this long each way")
    args = parser.parse_args(argv)
    if args.delay_ms is not None:
        latency = LatencyProxy(args.target, args.delay_ms / 1000, args.port)
        print(f"forwarding {latency.address} → {args.target} with {args.delay_ms:g} ms each way; Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            latency.close()
        return 0
    proxy = FaultProxy(args.target, args.port)
    print(f"forwarding {proxy.address} → {args.target}; type down, up, blackhole or quit", flush=True)
    try:
        for line in sys.stdin:
            command = line.strip().lower()
            if command == "down":
                proxy.down()
            elif command == "up":
                proxy.up()
            elif command == "blackhole":
                proxy.blackhole()
            elif command in ("quit", "exit"):
                break
            elif command:
                print("commands: down, up, blackhole, quit", flush=True)
                continue
            print(f"{proxy.state}: {proxy.stats}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
