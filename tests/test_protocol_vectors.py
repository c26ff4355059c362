"""The wire bytes in tests/vectors/frames.json pin both codecs: host (CPython) and firmware (MicroPython)."""

from __future__ import annotations

import json
import dataclasses
import struct

import pytest

from memhost import protocol as P
from conftest import FIRMWARE, REPO, VECTORS, run_micropython

DOC = json.loads(VECTORS.read_text())


def _f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _expected(v: dict) -> P.Message:
    cls = P.MESSAGE_TYPES[v["type"]]
    vals = [bytes.fromhex(x) if isinstance(x, str) and f.type in ("bytes", bytes) else x
            for f, x in zip(dataclasses.fields(cls), v["values"])]
    return cls(*vals)


@pytest.mark.parametrize("v", DOC["frames"], ids=lambda v: f"{v['name']}-{v['seq']}")
def test_host_decodes_each_vector_to_its_fields(v: dict) -> None:
    frame = P.decode_frame(bytes.fromhex(v["wire"]))
    assert (frame.version, frame.seq, frame.message.TYPE) == (v["version"], v["seq"], v["type"])
    got = frame.message
    for name, value in zip(v["fields"], v["values"]):
        g = getattr(got, name)
        if isinstance(value, float):
            assert g == _f32(value)
        elif isinstance(g, bytes):
            assert g.hex() == value
        else:
            assert g == value


@pytest.mark.parametrize("v", DOC["frames"], ids=lambda v: f"{v['name']}-{v['seq']}")
def test_host_encodes_each_vector_to_its_bytes(v: dict) -> None:
    assert P.encode_frame(_expected(v), v["seq"]).hex() == v["wire"]


@pytest.mark.parametrize("b", DOC["bad_frames"], ids=lambda b: b["why"])
def test_host_rejects_each_bad_vector(b: dict) -> None:
    with pytest.raises(P.CodecError):
        P.decode_frame(bytes.fromhex(b["wire"]))


def test_firmware_codec_matches_every_vector_under_micropython() -> None:
    out = run_micropython(REPO / "tests" / "mpy" / "check_vectors.py", str(VECTORS), path=[FIRMWARE])
    assert out.returncode == 0, out.stderr
    n = len(DOC["frames"]) + len(DOC["bad_frames"])
    assert out.stdout.strip().splitlines()[-1] == f"checked {n} failed 0", out.stdout


def test_vectors_cover_every_message_type() -> None:
    assert {v["type"] for v in DOC["frames"]} == set(P.MESSAGE_TYPES)
