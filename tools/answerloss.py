"""A gRPC proxy in front of the Firestore emulator that can lose a commit's answer.

    proxy = AnswerLossProxy("127.0.0.1:8080")   # the emulator; listens on a free loopback port
    proxy.address                               # give this to a client as FIRESTORE_EMULATOR_HOST
    proxy.lose_answers(1)                       # the next Commit lands, then its caller gets UNAVAILABLE
    proxy.calls["Commit"]                       # how many Commits reached the emulator
    proxy.close()

The fault of docs/reliability.md "Lost commit answers": the write reached Firestore and
was applied, and only the answer never came back. The proxy forwards every call to the
emulator byte for byte (requests and responses stay serialized, so it works for any
method, unary or streaming); for an armed Commit it waits for the emulator's answer,
throws it away and ends the call with UNAVAILABLE instead, which is what the client sees
when a connection dies after the server committed. The Firestore client's own retry
policy (google-cloud-firestore: Commit is retried on UNAVAILABLE and RESOURCE_EXHAUSTED)
then sends the same commit again, and the emulator judges the copy on the first one's
effects. `lose_answers(n, code=...)` can answer RESOURCE_EXHAUSTED instead, the other
retried code; `lose_answers(n, method="BatchGetDocuments")` loses other calls' answers.

Everything here is public gRPC API (a generic server handler and a channel's raw
multi-callables), and the client is pointed at the proxy the public way, through
FIRESTORE_EMULATOR_HOST. Loopback only.
"""

from __future__ import annotations

import collections
import threading
from concurrent import futures
from typing import Any, Iterator

import grpc

LOOPBACK = "127.0.0.1"
SERVICE = "/google.firestore.v1.Firestore/"
# Firestore's streaming methods (google/firestore/v1/firestore.proto); the rest are unary.
SERVER_STREAMING = frozenset({"BatchGetDocuments", "RunQuery", "RunAggregationQuery", "ExecutePipeline"})
BIDI_STREAMING = frozenset({"Write", "Listen"})
# Headers gRPC sets itself and refuses as call metadata.
_OWN_HEADERS = ("user-agent", "te", "content-type", "grpc-", ":")


class AnswerLossProxy:
    def __init__(self, target: str, threads: int = 16):
        self.target = target
        self._upstream = grpc.insecure_channel(target)
        self._lock = threading.Lock()
        self._armed: dict[str, list[grpc.StatusCode]] = collections.defaultdict(list)
        self.calls: collections.Counter[str] = collections.Counter()
        self.lost: collections.Counter[str] = collections.Counter()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), handlers=[_Handler(self)])
        port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self.address = f"{LOOPBACK}:{port}"
        self._server.start()

    def lose_answers(self, count: int = 1, method: str = "Commit", code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        """The next `count` calls of `method` are applied by the emulator, then answered `code`."""
        with self._lock:
            self._armed[method].extend([code] * count)

    def close(self) -> None:
        self._server.stop(grace=None)
        self._upstream.close()

    def __enter__(self) -> "AnswerLossProxy":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _take(self, method: str) -> grpc.StatusCode | None:
        with self._lock:
            self.calls[method] += 1
            armed = self._armed.get(method)
            if armed:
                self.lost[method] += 1
                return armed.pop(0)
            return None


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: AnswerLossProxy):
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        full = details.method
        if not full.startswith(SERVICE):
            return None
        name = full[len(SERVICE):]
        upstream = self.proxy._upstream
        if name in BIDI_STREAMING:
            call = upstream.stream_stream(full)
            return grpc.stream_stream_rpc_method_handler(lambda requests, context: self._stream(name, call, requests, context))
        if name in SERVER_STREAMING:
            call = upstream.unary_stream(full)
            return grpc.unary_stream_rpc_method_handler(lambda request, context: self._stream(name, call, request, context))
        call = upstream.unary_unary(full)
        return grpc.unary_unary_rpc_method_handler(lambda request, context: self._unary(name, call, request, context))

    def _unary(self, name: str, call: Any, request: bytes, context: grpc.ServicerContext) -> bytes:
        lose = self.proxy._take(name)
        try:
            answer = call(request, metadata=_metadata(context))
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")
        if lose is not None:
            context.abort(lose, f"answer lost on the way back (tools/answerloss.py): the emulator applied this {name}")
        return answer

    def _stream(self, name: str, call: Any, request: Any, context: grpc.ServicerContext) -> Iterator[bytes]:
        lose = self.proxy._take(name)
        try:
            answers = list(call(request, metadata=_metadata(context))) if lose is not None else call(request, metadata=_metadata(context))
            if lose is not None:
                context.abort(lose, f"answer lost on the way back (tools/answerloss.py): the emulator applied this {name}")
            yield from answers
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details() or "")


def _metadata(context: grpc.ServicerContext) -> list[tuple[str, str]]:
    return [(key, value) for key, value in context.invocation_metadata() if not key.startswith(_OWN_HEADERS)]
