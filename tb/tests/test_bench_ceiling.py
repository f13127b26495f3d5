"""The benchmark's ceiling model (nvmetb.perf.ceiling) against hand-computed beat counts,
and the guard's comparison rule. No simulator."""

import pytest

from nvmetb.perf import ceiling
from nvmetb.perf.ceiling import Interface
from nvmetb.perf.report import compare

pytestmark = pytest.mark.quick


def test_read_and_write_4k_256_bits():
    itf = Interface(width=256, mps=256, mrrs=512, rcb=64)
    # Read: 16 writes of 256 B, each 16 B descriptor + 256 B = 272 B = 9 beats of 32 B;
    # CQ entry 16 + 16 = 32 B: 1 beat; MSI-X 16 + 4 B: 1 beat. RC: the SQ entry, one
    # completion of 12 + 64 = 76 B = 5 straddle segments of 16 B = 2.5 beats.
    read = ceiling.io_command(itf, "read", 4096)
    assert (read.rq, read.rc, read.cycles, read.bound) == (146, 2.5, 146, "RQ")
    assert ceiling.rate(read.cycles) == pytest.approx(1_712_328.77, abs=0.01)
    # Write: 8 read requests (1 beat each), CQ entry, MSI-X on RQ; 64 completions of 64 B
    # (2.5 beats each) plus the SQ entry's on RC.
    write = ceiling.io_command(itf, "write", 4096)
    assert (write.rq, write.rc, write.bound) == (10, 162.5, "RC")
    # RCB 128: 32 completions of 12 + 128 = 140 B = 9 segments = 4.5 beats; the SQ entry
    # half of one.
    assert ceiling.io_command(Interface(rcb=128), "write", 4096).rc == 32 * 4.5 + 2.25
    # Null command: CQ entry + MSI-X on RQ (2 beats) against the SQ entry on RC (2.5).
    assert ceiling.null_command(itf).cycles == 2.5
    assert ceiling.null_command(itf, interrupts=0).rq == 1


def test_completion_header_bound():
    """At 1 µs (250 cycles) a 4 KiB Write reads 65 RCB blocks of 64 B (its data and its
    SQ entry), each holding one of the IP's 128 completion headers for at least 250
    cycles: 65 * 250 / 128 = 126.95 cycles per command, above the 512-bit interface's
    beats, so it binds there; at 256 bits RC (162.5 beats) binds; at a 128 B RCB the
    blocks halve; without latency there is no such bound."""
    w512 = ceiling.io_command(Interface(width=512), "write", 4096, latency=250)
    assert w512.held == pytest.approx(65 * 250 / 128) and w512.bound == "IP cpl"
    assert w512.cycles == w512.held > w512.rc
    w256 = ceiling.io_command(Interface(), "write", 4096, latency=250)
    assert (w256.cycles, w256.bound) == (162.5, "RC")
    r128 = ceiling.io_command(Interface(width=512, rcb=128), "write", 4096, latency=250)
    assert r128.held == pytest.approx(32.5 * 250 / 128) and r128.bound == "RC"
    assert ceiling.io_command(Interface(width=512), "write", 4096).held == 0
    # a Read reads only its SQ entry from the host
    assert ceiling.io_command(Interface(), "read", 4096, latency=250).held == \
        pytest.approx(250 / 128)


def test_512_bits_straddled_and_prp_list():
    itf = Interface(width=512)
    # RQ straddles two TLPs per 64 B beat: a 272 B write takes 9 segments of 32 B = 4.5
    # beats; CQ entry and MSI-X one segment each.
    read = ceiling.io_command(itf, "read", 4096)
    assert read.rq == 16 * 4.5 + 0.5 + 0.5 == 73
    assert read.rc == 5 / 4          # RC: 4 segments of 16 B per beat
    # 128 KiB at 256 bits: a PRP list of 31 entries (248 B): one read request on RQ;
    # on RC three 64 B completions (2.5 beats each) and 56 B (12 + 56 = 68 B: 2.5).
    big = ceiling.io_command(Interface(), "read", 128 * 1024)
    assert big.rq == 512 * 9 + 1 + 1 + 1
    assert big.rc == 2.5 + 3 * 2.5 + 2.5


def test_guard_rule():
    baseline = {"a": 100, "b": 10.0}
    assert compare({"a": 102, "b": 9.0}, baseline) == []
    assert len(compare({"a": 102.1, "b": 10.0}, baseline)) == 1      # 2.1 % worse
    assert compare({"a": 100}, baseline) == ["b: not measured (baseline 10.0)"]
