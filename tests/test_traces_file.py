"""The trace file (memhost.traces): records round-trip, appends survive reopening, a torn last
record is ignored by readers and cut by writers, and foreign files are refused with a clear line."""

import os

import numpy as np
import pytest

from memhost import traces as tr
from memhost.errors import RunFolderError


def _recs(n, program=0):
    r = tr.empty(n)
    r["program"] = program
    r["k"] = np.arange(n)
    r["polarity"] = np.arange(n) % 2
    r["amp_v"] = np.linspace(0.5, 1.5, n)
    r["width_s"] = 1e-6
    r["g_before"] = np.linspace(10e-6, 20e-6, n)
    r["g_after"] = r["g_before"] + 1e-7
    r["target_s"] = 15e-6
    r["tol_s"] = 0.1e-6
    r["dt_s"][1:] = 3e-5
    return r


def test_record_is_40_packed_little_endian_bytes():
    assert tr.RECORD_SIZE == 40
    assert tr.TRACE_DTYPE.isalignedstruct is False
    assert all(tr.TRACE_DTYPE.fields[f][0].str[0] in "<|" for f in tr.TRACE_DTYPE.names)


def test_records_round_trip_bit_for_bit(tmp_path):
    a, b = _recs(5), _recs(3, program=1)
    with tr.TraceWriter(tmp_path / tr.TRACES, {"preset": "x"}) as w:
        w.append(a)
        w.append(b)
        assert len(w) == 8
    got = tr.read_traces(tmp_path)          # a run folder resolves to its traces.bin
    assert got.dtype == tr.TRACE_DTYPE
    assert got.tobytes() == np.concatenate([a, b]).tobytes()
    assert np.isnan(got["dt_s"][0]) and got["dt_s"][1] == np.float32(3e-5)
    assert tr.read_header(tmp_path / tr.TRACES)[1]["meta"] == {"preset": "x"}
    # numpy alone reads it from the header's offset
    hl = tr.read_header(tmp_path / tr.TRACES)[0]
    assert hl % 64 == 0
    raw = np.fromfile(tmp_path / tr.TRACES, dtype=tr.TRACE_DTYPE, offset=hl)
    assert raw.tobytes() == got.tobytes()


def test_reopened_writer_appends_after_existing_records(tmp_path):
    p = tmp_path / tr.TRACES
    with tr.TraceWriter(p) as w:
        w.append(_recs(4))
    with tr.TraceWriter(p, {"ignored": 1}) as w:
        assert len(w) == 4
        w.append(_recs(2, program=7))
    got = tr.read_traces(p)
    assert list(got["program"]) == [0, 0, 0, 0, 7, 7]
    assert "ignored" not in tr.read_header(p)[1]["meta"]


def test_torn_last_record_is_ignored_then_cut_before_the_next_append(tmp_path):
    p = tmp_path / tr.TRACES
    with tr.TraceWriter(p) as w:
        w.append(_recs(3))
    with open(p, "ab") as f:                # a crash in the middle of the 4th record
        f.write(_recs(1, program=9).tobytes()[:17])
    assert len(tr.read_traces(p)) == 3
    assert tr.count(p) == 3
    with tr.TraceWriter(p) as w:
        w.append(_recs(1, program=5))
    got = tr.read_traces(p)
    assert list(got["program"]) == [0, 0, 0, 5]
    assert (os.path.getsize(p) - tr.read_header(p)[0]) % tr.RECORD_SIZE == 0


def test_keep_programs_cuts_the_records_of_programs_to_redo(tmp_path):
    p = tmp_path / tr.TRACES
    with tr.TraceWriter(p) as w:
        for prog in range(4):
            w.append(_recs(2, program=prog))
        removed = w.keep_programs(lambda prog: prog < 2)
        assert removed == 4
        w.append(_recs(1, program=2))
    assert list(tr.read_traces(p)["program"]) == [0, 0, 1, 1, 2]


def test_several_files_concatenate_in_order(tmp_path):
    for i in range(2):
        (tmp_path / str(i)).mkdir()
        with tr.TraceWriter(tmp_path / str(i)) as w:
            w.append(_recs(2, program=i))
    got = tr.read_traces([tmp_path / "0", tmp_path / "1" / tr.TRACES])
    assert list(got["program"]) == [0, 0, 1, 1]
    assert len(tr.read_traces(tmp_path / "0", mmap=False)) == 2


def test_a_structured_array_with_other_field_types_is_converted(tmp_path):
    r = _recs(3)
    other = np.zeros(3, dtype=[(n, "f8") for n in tr.TRACE_DTYPE.names])
    for n in tr.TRACE_DTYPE.names:
        other[n] = r[n]
    with tr.TraceWriter(tmp_path) as w:
        w.append(other)
    assert tr.read_traces(tmp_path).tobytes() == r.tobytes()


def test_a_file_that_is_not_a_trace_file_is_refused(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"step,level\n1,2\n")
    with pytest.raises(RunFolderError, match="not a memhost trace file"):
        tr.read_traces(p)
    with pytest.raises(RunFolderError, match="no such trace file"):
        tr.read_traces(tmp_path / "missing.bin")


def test_a_file_with_another_record_layout_is_refused(tmp_path):
    p = tmp_path / tr.TRACES
    with tr.TraceWriter(p) as w:
        w.append(_recs(1))
    data = bytearray(p.read_bytes())
    i = data.index(b'"record_size":40')
    data[i:i + 16] = b'"record_size":44'
    p.write_bytes(bytes(data))
    with pytest.raises(RunFolderError, match="another record layout"):
        tr.read_traces(p)
