"""Host memory behind the UltraScale+ adapter's requester interfaces, for cocotb.

:class:`UspDma` plays the hard IP and the host beyond it on RQ (``s_axis_rq_*``) and RC
(``m_axis_rc_*``) of ``UspTop``: cocotbext-pcie's ``RqSink`` takes every request TLP,
``RcSource`` returns completions that this module builds with ``Tlp_us``. Memory is a
:class:`~nvmetb.hostmem.HostMemory`, which checks each access (buffers, 4 KiB
crossings, max payload size, max read request size) and captures MSI-X messages.

What RC does that a root complex model does not (:class:`UspDmaSettings`): a latency
before a read's first completion; completions split at every 64-byte read completion
boundary (RCB) or only where max payload size forces it; completions of different
outstanding tags interleaved at random (each tag's in address order, as PCIe requires
[PCIe 4.0 §2.3.1.1]); several TLPs starting in one beat (straddling, 2 segments at 256
bits, up to 4 at 512); gaps on RC and backpressure on RQ. Reads that a
:meth:`HostMemory.fail_reads` rule fails are answered as the rule's ``kind`` says:

- ``"ur"`` / ``"ca"``: one completion without data, status UR / CA (error code "bad
  status"), after none or some successful completions of the request;
- ``"poisoned"``: every completion, one of them poisoned (EP, error code "poisoned");
- ``"drop"``: none or some completions, never the last: the read ends with the hard IP's
  own completion time-out (below), or earlier, with the adapter's.

The hard IP's tag table, as PG213 describes it for client tags ("Tag Management for
Non-Posted Transactions"; PG156 "Handling of Completion Errors"): a read's tag is in use
from the request until the IP's verdict on it is handed over on RC — its last completion,
an error completion that ends it, or, when nothing ends it, the IP's completion time-out:
a descriptor with error code 1001 (``ErrorCode.TIMEOUT``), request completed, no data,
``UspDmaSettings.ip_timeout`` cycles after the request. Re-issuing a tag before that is a
violation (the IP's behaviour is undefined; cocotbext-pcie's model asserts "active tag
reused"), whatever the adapter's own timer did.

Reads outside every buffer are answered with UR. With ``answer_reads=False`` no read is
ever answered (a host that does not answer; the register-level scenarios, whose model
has no memory behind the core).

Every request is checked where it leaves the adapter, besides HostMemory's own checks:
memory read or write only, DWORD-aligned with all byte enables set, a payload as long as
the descriptor says, no poisoned or discontinued TLP, a read's tag not outstanding (a
tag is free once the last completion of its read has gone out, or, for a read left
unanswered, once the completion time-out has passed), tags below 32 unless extended
tags are enabled, and no more than the hard IP's 32 KiB of completion data outstanding.
Breaches are :class:`~nvmetb.hostmem.Violation` records in the memory;
:meth:`UspDma.check` fails on any.

    dma = UspDma(dut, memory, USP_DMA_SETTINGS["busy"], config=config).start()
    ...
    dma.flush()        # function-level reset: completions still due are discarded
    dma.check()
"""

import itertools
import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiStreamBus
from cocotbext.pcie.core.tlp import CplStatus, TlpType
from cocotbext.pcie.core.utils import PcieId
from cocotbext.pcie.xilinx.us.interface import RcSource, RqSink
from cocotbext.pcie.xilinx.us.tlp import ErrorCode, Tlp_us

from nvmecore.config import CoreConfig
from nvmecore.pcie.usp_layouts import ReqType, straddle_segments
from nvmetb.hostmem import HostMemory, pcie_size_bytes
from nvmetb.usp.monitor import BeatMonitor
from nvmetb.usp.rq import RqParser

__all__ = ["UspDmaSettings", "USP_DMA_SETTINGS", "FAULT_KINDS", "UspDma",
           "RCB_BYTES", "COMPLETION_BUFFER_BYTES", "COMPLETION_HEADERS", "worst_case_room"]

log = logging.getLogger("tb")

FAULT_KINDS = ("ur", "ca", "poisoned", "drop")
#: The root complex's read completion boundary [PCIe 4.0 §2.3.1.1].
RCB_BYTES = 64
#: The UltraScale+ block's receive-buffer completion space, at every max payload size
#: capability [PG213 "Completion Space": 128 completion headers (CPH), 32,768 B of data
#: (CPD)]. Headers and data share the buffer, a header taking a 16-byte credit's room.
COMPLETION_BUFFER_BYTES = 32 * 1024
COMPLETION_HEADERS = 128
CREDIT_BYTES = 16
#: Tags without extended tags [PCIe 4.0 §2.2.6.2].
SHORT_TAGS = 32
#: The device's ID as enumeration made it (bus 1): the requester ID of its requests.
FUNCTION_ID = PcieId(1, 0, 0)
#: The hard IP's own completion time-out, in units of the adapter's
#: (``CoreConfig.completion_timeout``): later than the adapter's timer, so the bench
#: sees the adapter deliver a time-out to the core while the IP still holds the tag.
IP_TIMEOUT_FACTOR = 10

_READS = {TlpType.MEM_READ, TlpType.MEM_READ_64}
_WRITES = {TlpType.MEM_WRITE, TlpType.MEM_WRITE_64}


def worst_case_room(addr, length, rcb=RCB_BYTES):
    """(headers, bytes) of the hard IP's completion space a read may need: a completer
    may split it at every read completion boundary ``rcb`` [PCIe 4.0 §2.3.1.1], each
    completion a header plus its data in whole 16-byte credits."""
    headers, room, pos, end = 0, 0, addr, addr + length
    while pos < end:
        cut = min(end, (pos // rcb + 1) * rcb)
        headers += 1
        room += CREDIT_BYTES + -(-(cut - pos) // CREDIT_BYTES) * CREDIT_BYTES
        pos = cut
    return headers, room


@dataclass(frozen=True)
class UspDmaSettings:
    """How host memory behind RQ / RC behaves.

    ``latency``: cycles from the request's arrival to its first completion (at least 1).
    ``split``: "mps" cuts completions only where max payload size forces it (at an RCB);
    "rcb" cuts at every read completion boundary.
    ``rcb``: the root complex's read completion boundary in bytes, 64 or 128. Software
    sets the device's Link Control RCB bit to it [PCIe 4.0 §7.5.3.7], so the model shows
    it on ``cfg_rcb_status[0]``; the hard IP's completion budget is checked against the
    worst case at that boundary, every completion split at it (:func:`worst_case_room`).
    ``interleave``: the next completion comes from a random ready read (seeded), not the
    oldest.
    ``rc_segments``: TLPs that may start in one RC beat (1: no straddling; 2 or 4;
    None: as many as the width allows, 2 at 256 bits, 4 at 512).
    ``rq_stall``: probability that ``s_axis_rq_tready`` is low in a cycle.
    ``rc_gap``: probability that RC offers no beat in a cycle.
    ``fault``: the answer to a failing read whose rule names no kind.
    ``nph_credits``: non-posted header credits the link partner grants (None: plenty); a
    read takes one when it crosses RQ and gives it back ``np_return`` cycles later. The
    IP shows the count on ``pcie_tfc_nph_av`` two cycles late; a read sent with none left
    is a violation: the IP would hold it on RQ, and posted writes behind it would wait.
    ``ip_timeout``: cycles after which the hard IP ends a read that got no (final)
    completion with a time-out descriptor (error code 1001); None: ``IP_TIMEOUT_FACTOR``
    times the adapter's completion time-out.
    """
    latency: int = 1
    split: str = "mps"
    rcb: int = RCB_BYTES
    interleave: bool = False
    rc_segments: int | None = 1
    rq_stall: float = 0.0
    rc_gap: float = 0.0
    fault: str = "ur"
    seed: int = 0
    ip_timeout: int | None = None
    nph_credits: int | None = None
    np_return: int = 16

    def __post_init__(self):
        if self.latency < 1:
            raise ValueError("latency must be at least 1 cycle")
        if self.split not in ("mps", "rcb"):
            raise ValueError(f"split={self.split!r}: 'mps' or 'rcb'")
        if self.rcb not in (64, 128):
            raise ValueError(f"rcb={self.rcb}: 64 or 128 bytes")
        if self.rc_segments not in (None, 1, 2, 4):
            raise ValueError(f"rc_segments={self.rc_segments}: None, 1, 2 or 4")
        if self.fault not in FAULT_KINDS:
            raise ValueError(f"fault={self.fault!r}: one of {FAULT_KINDS}")


USP_DMA_SETTINGS = {
    "fast": UspDmaSettings(),
    "busy": UspDmaSettings(latency=40, split="rcb", interleave=True, rc_segments=None,
                           rq_stall=0.3, rc_gap=0.3, nph_credits=2, np_return=24),
}


@dataclass
class _Read:
    """A read request being answered: its completions still to send."""
    tag: int
    addr: int
    length: int
    ready: int                                       # first cycle it may answer
    frames: deque = field(default_factory=deque)     # packed RC frames, in order
    final: bool = True                               # the last one ends the request
    covered: int = 0                                 # bytes the frames carry (a "drop")


def _pauses(rng, probability):
    return (rng.random() < probability for _ in itertools.count())


class UspDma:
    """RQ sink and RC source over one :class:`HostMemory` (see the module text).

    ``config`` gives the datapath width and the adapter's completion time-out;
    ``rq_segments`` is 2 when the top straddles requests (512 bits). ``ext_tag()`` says
    whether tags from 32 up are allowed now. ``on_write(addr, data)`` sees every write
    (MSI-X messages included) as it arrives.
    """

    def __init__(self, dut, memory: HostMemory, settings: UspDmaSettings | None = None, *,
                 config: CoreConfig, rq_segments=1, ext_tag=lambda: True, answer_reads=True,
                 on_write=None, function_id=FUNCTION_ID, clock=None):
        self.dut = dut
        self.memory = memory
        self.settings = settings = settings or UspDmaSettings()
        self.config = config
        self.clk = clock if clock is not None else dut.user_clk
        self.rq_segments = rq_segments
        self.ext_tag = ext_tag
        self.answer_reads = answer_reads
        self.on_write = on_write
        self.function_id = function_id
        self.rng = random.Random(settings.seed)
        self.rc_segments = settings.rc_segments or straddle_segments("rc", config.data_width)
        self.cycle = 0
        self._pending: list[_Read] = []           # reads with completions to send
        self._outstanding: dict[int, int] = {}    # tag -> bytes, until its last completion
        self._unanswered: dict[int, tuple] = {}   # tag -> (cycle, request, bytes left)
        self.ip_timeout = settings.ip_timeout or IP_TIMEOUT_FACTOR * config.completion_timeout
        self.ip_timeouts = 0                      # reads the IP's time-out ended
        self._room: dict[int, tuple] = {}         # tag -> worst-case completion space
        self.most_room = 0
        free = settings.nph_credits if settings.nph_credits is not None else 15
        self._np_free = free                      # link partner's NP header credits
        self._np_back = deque()                   # (cycle, credits) coming back
        self._np_shown = deque([min(15, free)] * 2)   # pcie_tfc_nph_av, two cycles late
        self._releasing: dict[int, int] = {}      # tag -> index of its last RC frame
        self._sent = 0                            # RC frames handed to the source
        self._tasks = []
        self.rq = self.rc = None
        self.rq_monitor = None
        self.beat_violations = []                 # RQ beats the hard IP would reject
        # Statistics, for tests and the log.
        self.tags = Counter()
        self.reads = self.writes = self.completions = 0
        self.interleaved = 0                      # a completion of another tag between two
        self.straddled = 0                        # frames queued behind another one
        self.faults = Counter()
        self.fault_log = []                       # (kind, addr, length, completions sent)
        self._last_tag = None

    # -- Set-up ---------------------------------------------------------------------------

    def start(self):
        dut, s = self.dut, self.settings
        self.rq = RqSink(AxiStreamBus.from_prefix(dut, "s_axis_rq"), self.clk,
                         segments=self.rq_segments)
        self.rc = RcSource(AxiStreamBus.from_prefix(dut, "m_axis_rc"), self.clk,
                           segments=self.rc_segments)
        self.rq.log.setLevel(logging.WARNING)
        self.rc.log.setLevel(logging.WARNING)
        if s.rq_stall:
            self.rq.set_pause_generator(_pauses(random.Random(s.seed + 1), s.rq_stall))
        if s.rc_gap:
            self.rc.set_pause_generator(_pauses(random.Random(s.seed + 2), s.rc_gap))
        # Every cycle of RQ through the hard IP's framing rules: tvalid held from a TLP's
        # first beat to its last, is_sop / is_eop, tkeep, descriptors.
        width, straddle = self.config.data_width, self.rq_segments == 2
        self.rq_monitor = BeatMonitor(
            dut, "s_axis_rq", lambda: RqParser(width, straddle=straddle),
            violations=self.beat_violations, clock=self.clk,
            reset_when=lambda: int(dut.cfg_flr_in_process.value) & 1,
            on_tlps=self._np_take).start()
        dut.pcie_tfc_nph_av.value = self._np_shown[0]
        dut.cfg_rcb_status.value = int(s.rcb == 128)
        self._tasks = [cocotb.start_soon(self._run())]
        return self

    def stop(self):
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self.rq_monitor is not None:
            self.rq_monitor.stop()

    def flush(self):
        """Function-level reset: the hard IP discards this function's completions still
        due, and every tag is free again."""
        self._pending.clear()
        self._outstanding.clear()
        self._unanswered.clear()
        self._releasing.clear()
        if self.rc is not None:
            self._sent -= self.rc.queue_occupancy_frames
            self.rc.clear()
            self.rc.queue_occupancy_frames = 0
            self.rc.queue_occupancy_bytes = 0

    # -- Results --------------------------------------------------------------------------

    @property
    def outstanding(self):
        return len(self._outstanding)

    def summary(self):
        return (f"{self.reads} reads ({self.completions} completions, {self.interleaved} "
                f"interleaved, {self.straddled} straddled; tags {min(self.tags, default=0)}.."
                f"{max(self.tags, default=0)}), {self.writes} writes, faults "
                f"{dict(self.faults) or 'none'}, {self.ip_timeouts} hard-IP time-outs, at "
                f"most {self.most_room} B of completion space (worst case)")

    def check(self, ignore=()):
        """Fail if a request broke a rule; violation kinds in ``ignore`` are skipped (a
        register-level scenario writes MSI-X messages to any address)."""
        kept = [v for v in self.memory.violations if v.kind not in ignore]
        kept += self.beat_violations
        if kept:
            lines = "\n  ".join(str(v) for v in kept)
            raise AssertionError(f"{len(kept)} violation(s) on RQ:\n  {lines}")

    # -- Requests -------------------------------------------------------------------------

    def _violation(self, kind, op, addr, length, detail):
        self.memory._violation(kind, op, addr, length, detail)

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            while not self.rq.empty():
                self._request(self.rq.recv_nowait())
            self._ip_timeouts()
            self._np_credit()
            self._feed()

    def _np_take(self, tlps):
        """Reads crossing RQ take the link partner's non-posted header credits."""
        reads = sum(t.req_type == ReqType.MEM_READ for t in tlps)
        if not reads or self.settings.nph_credits is None:
            return
        if self._np_free < reads:
            self._violation("credit", "read", tlps[0].addr, 0,
                            f"{reads} read(s) sent with {self._np_free} non-posted header "
                            "credit(s): the hard IP holds them on RQ and posted writes "
                            "behind wait (pcie_tfc_nph_av ignored)")
        self._np_free -= reads
        self._np_back.append((self.cycle + self.settings.np_return, reads))

    def _np_credit(self):
        """Credits coming back; pcie_tfc_nph_av shows the count two cycles late."""
        while self._np_back and self._np_back[0][0] <= self.cycle:
            self._np_free += self._np_back.popleft()[1]
        if self.settings.nph_credits is None:
            return
        self._np_shown.append(max(0, min(15, self._np_free)))
        self.dut.pcie_tfc_nph_av.value = self._np_shown.popleft()

    def _ip_timeouts(self):
        """The hard IP's completion time-out: a read without its final completion for
        ``ip_timeout`` cycles ends with an error-code-1001 descriptor (request completed,
        no data, the bytes still due) [PG213 RC error codes], which frees its tag."""
        for tag, (started, tlp, read) in list(self._unanswered.items()):
            if self.cycle - started < self.ip_timeout:
                continue
            del self._unanswered[tag]
            addr = read.addr + read.covered
            frame = self._cpl(tlp, addr, read.length - read.covered,
                              error=ErrorCode.TIMEOUT, last=True)
            self._pending.append(_Read(tag, read.addr, read.length, self.cycle,
                                       deque([frame])))
            self._outstanding[tag] = read.length
            self.ip_timeouts += 1

    def _request(self, frame):
        try:
            tlp = Tlp_us.unpack_us_rq(frame)
        except Exception as error:        # an unknown request type, a short descriptor
            self._violation("format", "rq", 0, 0, f"undecodable request {frame!r}: {error}")
            return
        dwords = tlp.length or 1024
        op = "read" if tlp.fmt_type in _READS else "write"
        rules = []
        if tlp.fmt_type not in _READS | _WRITES:
            self._violation("format", "rq", tlp.address, 4 * dwords,
                            f"{tlp.fmt_type.name} requests are not expected")
            return
        if tlp.at or tlp.ep or tlp.discontinue:
            rules.append(f"AT {int(tlp.at)}, poisoned {tlp.ep}, discontinue {tlp.discontinue}")
        if tlp.first_be != 0xF or tlp.last_be != (0xF if dwords > 1 else 0):
            rules.append(f"byte enables {tlp.first_be:#x}/{tlp.last_be:#x} are not whole "
                         f"DWORDs")
        payload = len(tlp.data) // 4
        if payload != (dwords if op == "write" else 0):
            rules.append(f"{payload} payload DWORDs for a {op} of {dwords}")
        for rule in rules:
            self._violation("format", op, tlp.address, 4 * dwords, rule)
        if op == "write":
            self._write(tlp, bytes(tlp.data[:4 * dwords]))
        else:
            self._read(tlp, dwords)

    def _write(self, tlp, data):
        self.writes += 1
        self.memory.device_write(tlp.address, data, int(self.dut.cfg_max_payload.value))
        if self.on_write is not None:
            self.on_write(tlp.address, data)

    def _tag_free(self, tag):
        if tag in self._outstanding:
            return "its read is still outstanding"
        if tag in self._unanswered:
            started = self._unanswered[tag][0]
            return (f"its read of cycle {started} got no final completion and the hard IP "
                    f"holds the tag until its own time-out ({self.ip_timeout} cycles)")
        index = self._releasing.pop(tag, None)
        if index is not None and index >= self._sent - self.rc.queue_occupancy_frames:
            return "the last completion of its read has not been delivered"
        return None

    def _read(self, tlp, dwords):
        self.reads += 1
        tag, length = tlp.tag, 4 * dwords
        self.tags[tag] += 1
        problem = self._tag_free(tag)
        if problem:
            self._violation("tag", "read", tlp.address, length, f"tag {tag} reused: {problem}")
        if tag >= SHORT_TAGS and not self.ext_tag():
            self._violation("tag", "read", tlp.address, length,
                            f"tag {tag} while extended tags are disabled")
        # The IP's completion space, worst case (every completion split at the RCB), over
        # every read whose tag the IP still holds.
        for held in list(self._room):
            if held not in self._outstanding and held not in self._unanswered:
                del self._room[held]
        self._room[tag] = worst_case_room(tlp.address, length, self.settings.rcb)
        headers = sum(h for h, _ in self._room.values())
        room = sum(b for _, b in self._room.values())
        self.most_room = max(self.most_room, room)
        if headers > COMPLETION_HEADERS or room > COMPLETION_BUFFER_BYTES:
            self._violation("budget", "read", tlp.address, length,
                            f"reads in flight may need {headers} completion headers and "
                            f"{room} B of the hard IP's completion space (it has "
                            f"{COMPLETION_HEADERS} and {COMPLETION_BUFFER_BYTES} B)")
        data, error = self.memory.device_read(tlp.address, length,
                                              int(self.dut.cfg_max_read_req.value))
        kind = None
        if error:
            rule = self.memory.last_fault
            kind = (rule.kind if rule is not None else "ur") or self.settings.fault
            if kind == "late":
                # Later than every time-out: to the hard IP, a read never answered.
                kind = "drop"
            self.faults[kind] += 1
        if not self.answer_reads:
            kind = "drop"
        read = _Read(tag, tlp.address, length, self.cycle + self.settings.latency - 1)
        self._complete(read, tlp, data, kind)
        if error:
            self.fault_log.append((kind, tlp.address, length, len(read.frames)))
        if read.final:
            self._outstanding[tag] = length
        else:
            self._unanswered[tag] = (self.cycle, tlp, read)
        if read.frames:
            self._pending.append(read)

    # -- Completions ----------------------------------------------------------------------

    def _chunks(self, addr, length):
        """(address, bytes) of each completion of a successful read."""
        rcb = self.settings.rcb
        if self.settings.split == "rcb":
            limit = rcb
        else:
            limit = pcie_size_bytes(int(self.dut.cfg_max_payload.value))
        chunks, pos, end = [], addr, addr + length
        while pos < end:
            cut = min(end, pos + limit)
            if cut < end:
                cut -= cut % rcb
            chunks.append((pos, cut - pos))
            pos = cut
        return chunks

    def _cpl(self, tlp, addr, remaining, data=None, status=CplStatus.SC,
             error=ErrorCode.NORMAL_TERMINATION, poisoned=False, last=False):
        cpl = Tlp_us()
        cpl.fmt_type = TlpType.CPL_DATA if data is not None else TlpType.CPL
        cpl.requester_id = tlp.requester_id if tlp.requester_id_enable else self.function_id
        cpl.completer_id = PcieId(0, 0, 0)
        cpl.tag = tlp.tag
        cpl.tc = tlp.tc
        cpl.attr = tlp.attr
        cpl.status = status
        cpl.error_code = error
        cpl.ep = poisoned
        cpl.lower_address = addr & 0x7F           # 7 bits on the link [PCIe 4.0 §2.2.9]
        cpl.byte_count = remaining & 0x1FFF
        cpl.request_completed = last
        if data is not None:
            cpl.set_data(data)
        return cpl.pack_us_rc()

    def _complete(self, read, tlp, data, kind):
        """Fill ``read.frames`` with the completions ``kind`` calls for."""
        chunks = self._chunks(read.addr, read.length)

        def success(i, **fault):
            addr, n = chunks[i]
            offset = addr - read.addr
            return self._cpl(tlp, addr, read.length - offset, data[offset:offset + n],
                             last=i == len(chunks) - 1, **fault)

        if kind is None:
            read.frames.extend(success(i) for i in range(len(chunks)))
        elif kind in ("ur", "ca"):
            good = self.rng.randrange(len(chunks))
            read.frames.extend(success(i) for i in range(good))
            addr = chunks[good][0]
            read.frames.append(self._cpl(
                tlp, addr, read.length - (addr - read.addr),
                status=CplStatus.UR if kind == "ur" else CplStatus.CA,
                error=ErrorCode.BAD_STATUS, last=True))
        elif kind == "poisoned":
            bad = self.rng.randrange(len(chunks))
            read.frames.extend(
                success(i, poisoned=True, error=ErrorCode.POISONED) if i == bad else success(i)
                for i in range(len(chunks)))
        else:                                       # "drop": never the last completion
            sent = self.rng.randrange(len(chunks))
            read.frames.extend(success(i) for i in range(sent))
            read.covered = sum(n for _, n in chunks[:sent])
            read.final = False

    def _feed(self):
        """Hand the RC source as many completions as can start in its next beat."""
        while self.rc.queue_occupancy_frames < self.rc_segments:
            ready = [r for r in self._pending if r.ready <= self.cycle]
            if not ready:
                return
            read = self.rng.choice(ready) if self.settings.interleave else ready[0]
            if self._last_tag is not None and read.tag != self._last_tag and any(
                    r.tag == self._last_tag for r in self._pending):
                self.interleaved += 1
            self._last_tag = read.tag
            if self.rc.queue_occupancy_frames:
                self.straddled += 1
            self.rc.send_nowait(read.frames.popleft())
            self.completions += 1
            if not read.frames:
                self._pending.remove(read)
                if read.final:
                    del self._outstanding[read.tag]
                    self._releasing[read.tag] = self._sent
            self._sent += 1
