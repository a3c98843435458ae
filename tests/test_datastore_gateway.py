"""The pure parts of the etcd gateway client and the watcher: decoding and applying events."""

from __future__ import annotations

import base64
import json

import pytest

from speaker.datastore.etcd import RANGE_END, RANGE_START, apply_batch
from speaker.datastore.gateway import (
    Compacted,
    EtcdError,
    JsonStream,
    decode_watch_result,
    prefix_end,
    txn_body,
)
from speaker.datastore.model import AFFINITY_PREFIX, BGPCONFIG_KEY, NODE_PREFIX, WATCH_PREFIXES


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_json_stream_splits_objects_across_chunks() -> None:
    stream = JsonStream()
    data = json.dumps({"result": {"a": 1}}).encode() + b"\n" + b'{"result": {"b"'
    assert stream.feed(data) == [{"result": {"a": 1}}]
    assert stream.feed(b": 2}}") == [{"result": {"b": 2}}]
    assert stream.feed(b"  \n") == []


def test_watch_result_puts_deletes_and_revision() -> None:
    message = {"result": {"header": {"revision": "42"}, "events": [
        {"kv": {"key": b64("/k1"), "value": b64("v"), "mod_revision": "41"}},
        {"type": "DELETE", "kv": {"key": b64("/k2"), "mod_revision": "42"}},
    ]}}
    batch = decode_watch_result("e", message)
    assert batch is not None and batch.revision == 42
    snap = {"/k2": b"old"}
    apply_batch(snap, batch)
    assert snap == {"/k1": b"v"}
    assert decode_watch_result("e", {"result": {"header": {"revision": "3"},
                                                "created": True}}) is None


def test_watch_result_compacted_and_errors() -> None:
    with pytest.raises(Compacted) as info:
        decode_watch_result("e", {"result": {"canceled": True, "compact_revision": "17"}})
    assert info.value.compact_revision == 17 and "full re-read" in str(info.value)
    with pytest.raises(EtcdError, match="canceled"):
        decode_watch_result("e", {"result": {"canceled": True}})
    with pytest.raises(EtcdError, match="boom"):
        decode_watch_result("e", {"error": {"message": "boom"}})


def test_prefix_end_and_the_range_covers_what_derive_reads() -> None:
    assert prefix_end("/a/") == "/a0"
    for key in (AFFINITY_PREFIX + "node81/ipv4/block/10.0.0.0-26", BGPCONFIG_KEY,
                NODE_PREFIX + "node81", NODE_PREFIX + "zzz",
                "/calico/resources/v3/projectcalico.org/ippools/p",
                "/calico/resources/v3/projectcalico.org/bgppeers/p"):
        assert RANGE_START <= key < RANGE_END, key
    assert not RANGE_START <= "/calico/resources/v3/projectcalico.org/workloadendpoints/x" \
        < RANGE_END
    assert all(p.startswith("/calico/") for p in WATCH_PREFIXES)


def test_txn_body_puts_then_deletes_in_one_unconditional_transaction() -> None:
    body = txn_body({"/calico/a": b'{"x": 1}', "/calico/b": b""}, ["/calico/c"])
    assert body["compare"] == [] and body["failure"] == []
    ops = body["success"]
    assert [next(iter(op)) for op in ops] == ["request_put", "request_put",
                                             "request_delete_range"]
    assert base64.b64decode(ops[0]["request_put"]["key"]) == b"/calico/a"
    assert base64.b64decode(ops[0]["request_put"]["value"]) == b'{"x": 1}'
    assert ops[1]["request_put"]["value"] == ""
    assert base64.b64decode(ops[2]["request_delete_range"]["key"]) == b"/calico/c"
    assert "range_end" not in ops[2]["request_delete_range"]  # one key, not a prefix
    assert txn_body({})["success"] == []
