"""The host's protocol tables (message types, body layouts, CONFIG keys, error codes, RESULT statuses,
algorithms, version) are pinned to the firmware's memfw/protocol.py and to docs/protocol.md: a key or
code added on one side only fails here."""

from __future__ import annotations

import re

from conftest import FIRMWARE, REPO
from memhost import PROTOCOL_VERSION
from memhost import protocol as P

FW = (FIRMWARE / "memfw" / "protocol.py").read_text()
DOC = (REPO / "docs" / "protocol.md").read_text()


def _consts(prefix: str) -> dict[str, int]:
    return {m[1]: int(m[2], 0) for m in re.finditer(
        rf"^{prefix}([A-Z0-9_]+) = const\((0x[0-9A-Fa-f]+|\d+)\)", FW, re.M)}


def _camel(name: str) -> str:
    return "".join(w.capitalize() for w in name.split("_"))


def test_protocol_version() -> None:
    assert _consts("")["PROTOCOL_VERSION"] == PROTOCOL_VERSION == P.PROTOCOL_VERSION
    assert f"(version {PROTOCOL_VERSION})" in DOC.splitlines()[0]


def test_message_types_and_layouts() -> None:
    # message types are the constants written in hex
    fw_types = {m[1]: int(m[2], 16) for m in re.finditer(r"^([A-Z_]+) = const\((0x[0-9A-Fa-f]+)\)", FW, re.M)}
    host = {_camel(n): t for n, t in fw_types.items()}
    assert {cls.__name__: t for t, cls in P.MESSAGE_TYPES.items()} == host
    layouts = dict(re.findall(r"^    ([A-Z_]+): \"([^\"]*)\",", FW, re.M))
    for name, layout in layouts.items():
        assert P.MESSAGE_TYPES[fw_types[name]].LAYOUT == layout, name
    for name in ("READING", "PULSED", "RESULT", "ACK", "CONFIG", "BUSY"):
        fw_layout = re.search(rf'^{name}_LAYOUT = "([^"]+)"', FW, re.M)[1]
        assert P.MESSAGE_TYPES[fw_types[name]].LAYOUT == fw_layout, name
    assert re.search(r'^INFO_FIXED = "([^"]+)"', FW, re.M)[1] == P.INFO_FIXED.format


def test_error_codes_match_the_firmware_and_the_doc() -> None:
    fw = {v: k for k, v in _consts("E_").items()}
    assert P.ERROR_NAMES == fw
    doc = {int(m[1]): m[2] for m in re.finditer(r"^\| (\d+) \| ([A-Z_]+) \|", DOC, re.M)}
    assert doc == fw


def test_config_keys_match_the_firmware_and_the_doc() -> None:
    fw = {k.lower(): v for k, v in _consts("K_").items()}
    assert P.CONFIG_KEYS == fw
    doc = {m[2]: int(m[1]) for m in re.finditer(r"^\| (\d+) \| ([a-z0-9_]+) \|", DOC, re.M)}
    assert doc == fw


def test_statuses_and_algorithms() -> None:
    assert {v: k.lower() for k, v in _consts("ST_").items()} == P.STATUS_NAMES
    assert {k.lower(): v for k, v in _consts("ALG_").items()} == P.ALGORITHMS
