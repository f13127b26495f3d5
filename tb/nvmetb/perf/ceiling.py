"""The interface ceiling of each benchmark figure: what the hard IP's requester interfaces
could carry at best, beat by beat.

The core reaches host memory only through the UltraScale+ requester interfaces: RQ
(requests it sends: memory writes with their payload, read requests) and RC (completions
it receives), each one beat of ``width`` bits per cycle. The model counts, per command,
the beats each direction must carry and takes the busier one; a figure's ceiling is the
clock divided by that count. What it counts [PG213 "Requester Interface"]:

- every TLP starts with its descriptor (RQ: 4 DWORDs, RC: 3 DWORDs) and its payload
  follows in the same and the next beats; a TLP occupies whole segments of a beat. A
  segment is the whole beat without straddling; with straddling, several TLPs may start
  in one beat (``straddle_segments``: RC 2 at 256 bits and 4 at 512, RQ 2 at 512), so a
  TLP occupies whole beat/segments slices instead;
- memory writes (a Read command's data) are split at max payload size, data buffers
  being page aligned; read requests (a Write command's data, PRP lists) at max read
  request size; each completion of a read carries at most one read completion boundary
  (RCB, 64 or 128 B) of data, as a root complex that splits at every RCB returns it;
- per command: the SQ entry (64 B, fetched several at a time: completions of a whole RCB
  each), its CQ entry write (16 B), its MSI-X write (4 B) when interrupts fire per
  command (a share of one with coalescing, none when off), and for transfers of more
  than two pages the PRP list (8 B per page after the first);
- with host latency, the hard IP's completion space [PG213 "Completion Space": 128
  completion headers]: a read from the host holds one header per RCB block it spans
  from its request until its completions are in, at least the host latency, so at most
  128 RCB blocks of reads are in flight (8 KiB at a 64 B RCB): a command reading ``h``
  blocks (its SQ entry's share, its PRP list, a Write's data) takes at least
  ``h * latency / 128`` cycles. This bounds Writes at 512 bits and 1 µs; the bound is
  named "IP cpl" where it binds. It leaves out the adapter's and core's own part of the
  round trip, so it too errs high;
- not counted: SQ fetch read requests (one beat per multi-entry fetch) and doorbell
  writes (they arrive on CQ, another interface). Both make the ceiling higher, never
  lower: a figure above its ceiling is a bench or model error.

All sizes in bytes; rates at :data:`CLOCK_MHZ`.
"""

import math
from dataclasses import dataclass

from nvmecore.pcie.usp_layouts import RC_DESC_DW, RQ_DESC_DW, straddle_segments

__all__ = ["CLOCK_MHZ", "Interface", "Costs", "null_command", "io_command", "rate",
           "SQE_BYTES", "CQE_BYTES", "MSIX_BYTES", "PAGE_BYTES"]

CLOCK_MHZ = 250
#: Completion headers of the hard IP's receive buffer [PG213 "Completion Space"].
COMPLETION_HEADERS = 128
SQE_BYTES = 64
CQE_BYTES = 16
MSIX_BYTES = 4
PAGE_BYTES = 4096
PRP_ENTRY_BYTES = 8


@dataclass(frozen=True)
class Interface:
    """The requester interfaces as the bench sets them up: datapath ``width`` (bits),
    max payload size ``mps``, max read request size ``mrrs``, the root complex's ``rcb``,
    and whether RQ / RC straddle (where the width allows it)."""
    width: int = 256
    mps: int = 256
    mrrs: int = 512
    rcb: int = 64
    rq_straddle: bool = True
    rc_straddle: bool = True

    def __post_init__(self):
        if self.width not in (256, 512):
            raise ValueError(f"width={self.width}: the UltraScale+ top is 256 or 512 bits")
        if self.rcb not in (64, 128):
            raise ValueError(f"rcb={self.rcb}: 64 or 128")

    @property
    def beat_bytes(self):
        return self.width // 8

    def segments(self, interface):
        straddle = self.rq_straddle if interface == "rq" else self.rc_straddle
        return straddle_segments(interface, self.width) if straddle else 1

    def tlp_beats(self, interface, payload):
        """Beats (fractions with straddling) one TLP of ``payload`` bytes occupies."""
        desc = 4 * (RQ_DESC_DW if interface == "rq" else RC_DESC_DW)
        segments = self.segments(interface)
        segment = self.beat_bytes // segments
        return math.ceil((desc + payload) / segment) / segments

    def completions(self, length):
        """RC beats of one read of ``length`` bytes from an RCB-aligned address."""
        full, rest = divmod(length, self.rcb)
        beats = full * self.tlp_beats("rc", self.rcb)
        return beats + (self.tlp_beats("rc", rest) if rest else 0)

    def read_requests(self, length):
        """RQ beats of the read requests for ``length`` bytes."""
        return math.ceil(length / self.mrrs) * self.tlp_beats("rq", 0)

    def writes(self, length):
        """RQ beats of the memory writes of ``length`` bytes (page-aligned buffer)."""
        full, rest = divmod(length, self.mps)
        beats = full * self.tlp_beats("rq", self.mps)
        return beats + (self.tlp_beats("rq", rest) if rest else 0)


@dataclass(frozen=True)
class Costs:
    """Beats per command on RQ and RC, and ``held``: the cycles per command the hard IP's
    completion headers allow at the host latency; ``cycles`` is the largest."""
    rq: float
    rc: float
    held: float = 0.0

    @property
    def cycles(self):
        return max(self.rq, self.rc, self.held)

    @property
    def bound(self):
        if self.held > max(self.rq, self.rc):
            return "IP cpl"
        return "RQ" if self.rq >= self.rc else "RC"


def _held(itf: Interface, read_bytes, latency):
    """Cycles per command that reading ``read_bytes`` from the host (RCB-aligned pieces)
    takes of the completion headers at ``latency`` cycles of host latency."""
    return read_bytes / itf.rcb * latency / COMPLETION_HEADERS


def _per_command(itf: Interface, interrupts):
    """(RQ, RC) beats every command costs: SQ entry in, CQ entry and MSI-X out.
    ``interrupts``: MSI-X messages per command (1, 1/threshold, 0)."""
    sqe_rc = SQE_BYTES / itf.rcb * itf.tlp_beats("rc", itf.rcb)
    rq = itf.tlp_beats("rq", CQE_BYTES) + interrupts * itf.tlp_beats("rq", MSIX_BYTES)
    return rq, sqe_rc


def null_command(itf: Interface, interrupts=1.0, latency=0) -> Costs:
    """A command without data (Flush): its SQ entry, CQ entry and interrupt."""
    rq, rc = _per_command(itf, interrupts)
    return Costs(rq, rc, _held(itf, SQE_BYTES, latency))


def prp_list_bytes(length):
    """Bytes of PRP list a page-aligned transfer of ``length`` needs (none up to two
    pages: PRP2 then points at the second page)."""
    pages = math.ceil(length / PAGE_BYTES)
    return PRP_ENTRY_BYTES * (pages - 1) if pages > 2 else 0


def io_command(itf: Interface, op, length, interrupts=1.0, latency=0) -> Costs:
    """A Read (``op="read"``: data written to the host on RQ) or Write (``"write"``:
    read requests on RQ, data in completions on RC) of ``length`` bytes; ``latency``:
    the host's, in cycles (for the completion-header bound)."""
    rq, rc = _per_command(itf, interrupts)
    prp = prp_list_bytes(length)
    if prp:
        rq += itf.read_requests(prp)
        rc += itf.completions(prp)
    if op == "read":
        rq += itf.writes(length)
    elif op == "write":
        rq += itf.read_requests(length)
        rc += itf.completions(length)
    else:
        raise ValueError(f"op={op!r}: 'read' or 'write'")
    read_bytes = SQE_BYTES + prp + (length if op == "write" else 0)
    return Costs(rq, rc, _held(itf, read_bytes, latency))


def rate(cycles_per_command):
    """Commands per second at :data:`CLOCK_MHZ`."""
    return CLOCK_MHZ * 1e6 / cycles_per_command
