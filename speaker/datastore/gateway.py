"""A minimal etcd v3 client over etcd's JSON gRPC gateway (HTTP/1.1, optional TLS), stdlib only.

Why not a gRPC client: aetcd 1.0.0 (the maintained asyncio one) opens only insecure
channels (no CA / client certificate, which Calico's ETCD_*_FILE settings need) and brings
grpcio and protobuf; the gateway that every etcd 3.4+ serves on its client port speaks JSON
over HTTP, which asyncio streams and the ssl module handle.  We need three calls: Range (a
prefix at one revision, paged), Watch (a stream of events from a revision) and, for the lab,
Put / DeleteRange / Txn / Compact.  Keys and values are base64 in the JSON; 64-bit integers are
strings.  The decoding helpers are pure and unit-tested; only :class:`Gateway` does I/O.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "Compacted",
    "EtcdError",
    "Event",
    "Gateway",
    "JsonStream",
    "WatchBatch",
    "decode_watch_result",
    "prefix_end",
    "txn_body",
]

PAGE = 1000
MAX_HEADER = 64 * 1024


class EtcdError(Exception):
    """etcd (or the way to it) failed; the message names the endpoint and the call."""


class Compacted(EtcdError):
    """The watch's start revision was compacted away: only a full re-read is safe now."""

    def __init__(self, endpoint: str, compact_revision: int) -> None:
        self.compact_revision = compact_revision
        super().__init__(f"{endpoint}: watch start revision is compacted (etcd kept history "
                         f"from {compact_revision} on); a full re-read is needed")


@dataclass(frozen=True)
class Event:
    """One change: ``value`` None for a delete."""

    key: str
    value: bytes | None
    mod_revision: int


@dataclass(frozen=True)
class WatchBatch:
    """One watch response: its events and the store revision it brings us to."""

    revision: int
    events: tuple[Event, ...]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with ``prefix`` (etcd's convention)."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    raw[-1] += 1
    return raw.decode("latin-1")


def txn_body(put: Mapping[str, bytes], delete: Sequence[str] = ()) -> dict[str, Any]:
    """The gateway's /v3/kv/txn request writing ``put`` and deleting ``delete`` atomically
    (no compare: always the success branch), so watchers see them as one revision."""
    ops: list[dict[str, Any]] = [
        {"request_put": {"key": _b64(k), "value": base64.b64encode(v).decode()}}
        for k, v in put.items()]
    ops += [{"request_delete_range": {"key": _b64(k)}} for k in delete]
    return {"compare": [], "success": ops, "failure": []}


def decode_watch_result(endpoint: str, message: Mapping[str, Any]) -> WatchBatch | None:
    """A gateway watch message as a batch; None for the creation ack and progress notices
    without events.  Compacted for a compacted start revision, EtcdError for an error."""
    if "error" in message:
        err = message["error"]
        text = err.get("message", err) if isinstance(err, dict) else err
        raise EtcdError(f"{endpoint}: watch failed: {text}")
    result = message.get("result", message)
    compact = int(result.get("compact_revision", 0) or 0)
    if compact:
        raise Compacted(endpoint, compact)
    if result.get("canceled"):
        raise EtcdError(f"{endpoint}: watch canceled by etcd: "
                        f"{result.get('cancel_reason', 'no reason given')}")
    revision = int(result.get("header", {}).get("revision", 0) or 0)
    events = []
    for ev in result.get("events", []) or []:
        kv = ev.get("kv", {})
        key = _unb64(kv.get("key")).decode("utf-8", "replace")
        value = None if ev.get("type") == "DELETE" else _unb64(kv.get("value"))
        events.append(Event(key, value, int(kv.get("mod_revision", 0) or 0)))
    if result.get("created") and not events:
        return None
    return WatchBatch(revision, tuple(events))


class JsonStream:
    """Splits a byte stream into the JSON objects the gateway writes back to back."""

    def __init__(self) -> None:
        self._text = ""
        self._decoder = json.JSONDecoder()

    def feed(self, data: bytes) -> list[Any]:
        self._text += data.decode("utf-8")
        out: list[Any] = []
        while True:
            stripped = self._text.lstrip()
            if not stripped:
                self._text = ""
                return out
            try:
                obj, end = self._decoder.raw_decode(stripped)
            except json.JSONDecodeError:
                self._text = stripped
                return out  # incomplete: wait for more bytes
            out.append(obj)
            self._text = stripped[end:]


@dataclass(frozen=True)
class _Endpoint:
    url: str
    host: str
    port: int
    tls: bool


def _endpoint(url: str) -> _Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.port:
        raise EtcdError(f"{url}: not an etcd URL like https://10.0.0.1:2379")
    return _Endpoint(url, parts.hostname, parts.port, parts.scheme == "https")


class Gateway:
    """Talks to one etcd endpoint at a time; ``endpoints`` are tried in turn on failure."""

    def __init__(self, endpoints: tuple[str, ...], *, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None,
                 timeout: float = 5.0) -> None:
        if not endpoints:
            raise EtcdError("no etcd endpoints given")
        self._endpoints = [_endpoint(u) for u in endpoints]
        self._current = 0
        self._timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        if any(e.tls for e in self._endpoints):
            try:
                self._ssl = ssl.create_default_context(cafile=ca_file)
                if cert_file is not None and key_file is not None:
                    self._ssl.load_cert_chain(cert_file, key_file)
            except (OSError, ssl.SSLError) as exc:
                raise EtcdError(f"cannot load the etcd TLS files (ca {ca_file}, cert "
                                f"{cert_file}, key {key_file}): {exc}") from None

    @property
    def endpoint(self) -> str:
        """The endpoint in use (the last one tried)."""
        return self._endpoints[self._current].url

    def rotate(self) -> None:
        """Use the next endpoint for the next call (after a failure)."""
        self._current = (self._current + 1) % len(self._endpoints)

    # ------------------------------------------------------------------ HTTP

    async def _open(self, path: str, body: Mapping[str, Any]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]]:
        """Send the POST and read the status and headers; (reader, writer, headers)."""
        ep = self._endpoints[self._current]
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ep.host, ep.port, ssl=self._ssl if ep.tls else None,
                                        limit=2**22), self._timeout)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            raise EtcdError(f"{ep.url}: cannot connect: {exc or 'timed out'}") from None
        payload = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {ep.host}:{ep.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Connection: close\r\n\r\n".encode() + payload)
        try:
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError) as exc:
            writer.close()
            raise EtcdError(f"{ep.url}{path}: no HTTP reply: {exc or 'timed out'}") from None
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(":") for line in lines[1:] if line)}
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        if len(status) < 2 or status[1] != "200":
            text = await self._body(reader, headers, chunked)
            writer.close()
            raise EtcdError(f"{ep.url}{path}: HTTP {' '.join(status[1:])}: "
                            f"{text.decode('utf-8', 'replace')[:300]}")
        return reader, writer, headers

    async def _body(self, reader: asyncio.StreamReader, headers: Mapping[str, str],
                    chunked: bool) -> bytes:
        if chunked:
            parts = [c async for c in self._chunks(reader)]
            return b"".join(parts)
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read()

    async def _chunks(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            yield data[:-2]

    async def _call(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        reader, writer, headers = await self._open(path, body)
        ep = self.endpoint
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        try:
            raw = await asyncio.wait_for(self._body(reader, headers, chunked), self._timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError) as exc:
            raise EtcdError(f"{ep}{path}: reply cut short: {exc or 'timed out'}") from None
        finally:
            writer.close()
        try:
            reply = json.loads(raw)
        except ValueError:
            raise EtcdError(f"{ep}{path}: reply is not JSON: {raw[:200]!r}") from None
        if not isinstance(reply, dict):
            raise EtcdError(f"{ep}{path}: reply is not a JSON object")
        return reply

    # ------------------------------------------------------------------ etcd calls

    async def range(self, start: str, end: str) -> tuple[int, dict[str, bytes]]:
        """Every key in [start, end) at one revision (paged): (revision, {key: value})."""
        out: dict[str, bytes] = {}
        revision = 0
        key = start
        while True:
            body: dict[str, Any] = {"key": _b64(key), "range_end": _b64(end), "limit": PAGE}
            if revision:
                body["revision"] = revision
            reply = await self._call("/v3/kv/range", body)
            if not revision:
                revision = int(reply.get("header", {}).get("revision", 0))
            kvs = reply.get("kvs", []) or []
            for kv in kvs:
                out[_unb64(kv.get("key")).decode("utf-8", "replace")] = _unb64(kv.get("value"))
            if not reply.get("more") or not kvs:
                return revision, out
            key = _unb64(kvs[-1]["key"]).decode("utf-8", "replace") + "\x00"

    async def watch(self, start: str, end: str, start_revision: int
                    ) -> AsyncIterator[WatchBatch]:
        """Batches of events in [start, end) from ``start_revision`` until the stream ends
        (then EtcdError: the caller re-reads)."""
        body = {"create_request": {"key": _b64(start), "range_end": _b64(end),
                                   "start_revision": start_revision}}
        reader, writer, headers = await self._open("/v3/watch", body)
        ep = self.endpoint
        chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        stream = JsonStream()
        try:
            source = self._chunks(reader) if chunked else _raw(reader)
            async for data in source:
                for message in stream.feed(data):
                    batch = decode_watch_result(ep, message)
                    if batch is not None:
                        yield batch
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                UnicodeDecodeError, ValueError) as exc:
            raise EtcdError(f"{ep}: watch stream broken: {exc}") from None
        finally:
            writer.close()
        raise EtcdError(f"{ep}: watch stream closed by etcd")

    async def put(self, key: str, value: bytes) -> int:
        """Write one key; the new revision (for tests and the lab)."""
        reply = await self._call("/v3/kv/put", {"key": _b64(key),
                                                "value": base64.b64encode(value).decode()})
        return int(reply.get("header", {}).get("revision", 0))

    async def delete(self, key: str) -> int:
        """Delete one key; the new revision."""
        reply = await self._call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(reply.get("header", {}).get("revision", 0))

    async def txn(self, put: Mapping[str, bytes], delete: Sequence[str] = ()) -> int:
        """Write and delete keys in one transaction (one revision); the new revision.  The
        lab registers many nodes at once with it (integration/bench/datastore.py)."""
        reply = await self._call("/v3/kv/txn", txn_body(put, delete))
        if not reply.get("succeeded"):
            raise EtcdError(f"{self.endpoint}/v3/kv/txn: not applied: {reply}")
        return int(reply.get("header", {}).get("revision", 0))

    async def compact(self, revision: int) -> None:
        """Drop history before ``revision`` (physical, so a watch from before fails)."""
        await self._call("/v3/kv/compaction", {"revision": revision, "physical": True})


async def _raw(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while data := await reader.read(65536):
        yield data
