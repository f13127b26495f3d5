"""UspCompleter in the Amaranth simulator: CQ requests from the bench model, a Python
register file behind the register bus, CC completions checked by CcParser, everything
compared with a reference written from PCIe's rules (ref_* below).

One testbench steps all bus models each cycle: the CQ driver (random gaps, and a model of
the hard IP's non-posted credit counter that holds reads without credit), the CC sink
(random tready), the register file (random request stalls and response delays)."""

import collections
import random

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from nvmecore.layouts import BAR0_SIZE
from nvmecore.pcie.usp_completer import UspCompleter
from nvmecore.pcie.usp_layouts import CplStatus, ReqType, tuser_layout
from nvmetb.usp.cq import CcCompletion, CcParser, CqRequest, cq_beats

pytestmark = pytest.mark.quick

WIDTHS = (256, 512)
BAR_BASE = 0x1_2340_0000             # a 64-bit BAR0 address, 16 KiB aligned
MASK64 = (1 << 64) - 1
HARD_IP_CREDIT_LIMIT = 32            # the hard IP's counter saturates here [PG213]


def init_qword(qaddr):
    """Register file contents before any write (deterministic per address)."""
    return (qaddr * 0x9E37_79B9_7F4A_7C15 + 0x0123_4567_89AB_CDEF) & MASK64


# -- Reference, from PCIe's rules ----------------------------------------------------------

def length_dw(request):
    return request.dword_count or 1024


def dword_bes(request):
    n = length_dw(request)
    return [request.first_be if i == 0 else request.last_be if i == n - 1 else 0xF
            for i in range(n)]


def classify(request, mps):
    """"read", "write", "drop" (posted, refused) or "ur" (non-posted, refused)."""
    n = length_dw(request)
    if request.bar_id == 0 and request.req_type == ReqType.MEM_READ and n <= 32:
        return "read"
    if request.bar_id == 0 and request.req_type == ReqType.MEM_WRITE and 4 * n <= 128 << mps:
        return "write"
    return "drop" if request.posted else "ur"


def ref_accesses(request, kind):
    """Register-bus accesses (addr, write, be, data masked by be) a request should make."""
    if kind not in ("read", "write"):
        return []
    qwords = {}
    for i, be in enumerate(dword_bes(request)):
        offset = (request.addr + 4 * i) % BAR0_SIZE
        qbe, qdata = qwords.get(offset & ~7, (0, 0))
        shift = 4 * ((offset >> 2) & 1)
        word = int.from_bytes(request.payload[4 * i:4 * i + 4], "little") if kind == "write" else 0
        qwords[offset & ~7] = (qbe | be << shift, qdata | word << (8 * shift))
    accesses = []
    for addr, (be, qdata) in qwords.items():        # dicts keep insertion order: low first
        if kind == "read" and length_dw(request) == 1 and request.first_be == 0:
            continue                                # zero-length read: no access
        if kind == "write" and be == 0:
            continue
        mask = sum(0xFF << (8 * b) for b in range(8) if be >> b & 1)
        accesses.append((addr, int(kind == "write"), be, qdata & mask if kind == "write" else 0))
    return accesses


def apply_write(regfile, addr, be, data):
    mask = sum(0xFF << (8 * b) for b in range(8) if be >> b & 1)
    old = regfile.get(addr, init_qword(addr >> 3))
    regfile[addr] = (old & ~mask) | (data & mask)


def ref_completion(request, kind, regfile):
    """The completion a request should get (None for posted ones)."""
    if kind in ("write", "drop"):
        return None
    n = length_dw(request)
    bes = dword_bes(request)
    mem_read = request.req_type in (ReqType.MEM_READ, ReqType.MEM_READ_LOCKED)
    # [PCIe 4.0 §2.3.1.1] byte count from the first to the last enabled byte; a zero-length
    # read counts 1. Lower address: the first enabled byte's.
    enabled = [4 * i + b for i, be in enumerate(bes) for b in range(4) if be >> b & 1]
    first_byte = enabled[0] if enabled else 0
    mem_bytes = enabled[-1] - enabled[0] + 1 if enabled else 1
    if mem_read:
        byte_count, lower = mem_bytes, (request.addr + first_byte) & 0x7F
    elif request.req_type in (ReqType.MEM_FETCH_ADD, ReqType.MEM_SWAP):
        byte_count, lower = 4 * n, 0            # the operand size [PCIe 4.0 §2.2.9]
    elif request.req_type == ReqType.MEM_CAS:
        byte_count, lower = 2 * n, 0
    else:
        byte_count, lower = 4, 0
    common = dict(lower_address=lower, byte_count=byte_count, requester_id=request.requester_id,
                  tag=request.tag, tc=request.tc, attr=request.attr,
                  locked_read=int(request.req_type == ReqType.MEM_READ_LOCKED))
    if kind == "ur":
        return CcCompletion(dword_count=0, status=CplStatus.UR, **common)
    data = b""
    for i in range(n):
        offset = (request.addr + 4 * i) % BAR0_SIZE
        qword = regfile.get(offset & ~7, init_qword(offset >> 3))
        dword = 0 if request.first_be == 0 and n == 1 else qword >> (8 * (offset & 4))
        data += (dword & 0xFFFF_FFFF).to_bytes(4, "little")
    return CcCompletion(dword_count=n, status=CplStatus.SC, data=data, **common)


# -- Bench ---------------------------------------------------------------------------------

class Result:
    def __init__(self):
        self.accesses = collections.defaultdict(list)   # request index → accesses
        self.completions = []
        self.unsupported = 0
        self.turnaround = []          # cycles from a read's first CQ beat to its first CC beat
        self.max_ip_credits = 0
        self.cycles = 0


def run(width, requests, *, seed=1, mps=0, cq_gap=0.0, cc_stall=0.0, req_stall=0.0,
        resp_delay=(1, 1), credit_model=True, mutate=None, completions=None,
        max_cycles=100_000):
    """Drive ``requests`` through a UspCompleter; return a :class:`Result`. ``mutate``
    may change a request's beats (list of dicts) before they are sent; ``completions`` is
    how many to wait for (by default, one per read or refused non-posted request)."""
    dut = UspCompleter(width)
    rng = random.Random(seed)
    result = Result()
    parser = CcParser(width)
    regfile = {}

    beats = collections.deque()
    for index, request in enumerate(requests):
        req_beats = cq_beats(request, width)
        if mutate:
            req_beats = mutate(index, req_beats)
        for k, beat in enumerate(req_beats):
            beats.append((index, k == 0, not request.posted, beat))
    expected_cpl = sum(classify(r, mps) in ("read", "ur") for r in requests) \
        if completions is None else completions

    async def testbench(ctx):
        ctx.set(dut.max_payload_size, mps)
        current = None            # (index, first, non_posted, beat) on CQ
        responses = collections.deque()     # (cycle due, data)
        ip_credits = 0            # the hard IP's non-posted credit counter
        request_index = None
        read_start = None
        cc_in_tlp = False
        cycle = 0
        while beats or current or responses or len(result.completions) < expected_cpl \
                or not ctx.get(dut.idle):
            assert cycle < max_cycles, "completer hangs"
            # -- inputs
            if current is None and beats and rng.random() >= cq_gap:
                _, first, non_posted, _ = beats[0]
                if not (credit_model and first and non_posted and ip_credits == 0):
                    current = beats.popleft()
            ctx.set(dut.cq.tvalid, current is not None)
            if current is not None:
                beat = current[3]
                ctx.set(dut.cq.tdata, beat["tdata"])
                ctx.set(dut.cq.tkeep, beat["tkeep"])
                ctx.set(dut.cq.tlast, beat["tlast"])
                ctx.set(dut.cq.tuser.as_value(), beat["tuser"])
            cc_ready = rng.random() >= cc_stall
            ctx.set(dut.cc.tready, cc_ready)
            req_ready = rng.random() >= req_stall
            ctx.set(dut.regs.req.ready, req_ready)
            resp_valid = bool(responses) and responses[0][0] <= cycle
            ctx.set(dut.regs.resp.valid, resp_valid)
            if resp_valid:
                ctx.set(dut.regs.resp.payload, responses[0][1])
            # -- outputs and transfers at this edge (a register access in the cycle the
            # next request's first beat is taken belongs to the request before it)
            access_index = request_index
            if current is not None and ctx.get(dut.cq.tready):
                index, first, non_posted, _ = current
                if first:
                    request_index = index
                    read_start = cycle if requests[index].req_type == ReqType.MEM_READ else None
                    if credit_model and non_posted:
                        assert ip_credits > 0
                        ip_credits -= 1
                current = None
            if ctx.get(dut.cc.tvalid):
                if not cc_in_tlp and read_start is not None:
                    result.turnaround.append(cycle - read_start)
                    read_start = None
                cc_in_tlp = True
                if cc_ready:
                    beat = {"tdata": ctx.get(dut.cc.tdata), "tkeep": ctx.get(dut.cc.tkeep),
                            "tlast": ctx.get(dut.cc.tlast),
                            "tuser": ctx.get(dut.cc.tuser.as_value())}
                    result.completions += parser.feed(beat)
                    cc_in_tlp = not beat["tlast"]
            else:
                parser.gap()
            if ctx.get(dut.regs.req.valid) and req_ready:
                p = ctx.get(dut.regs.req.payload)
                mask = sum(0xFF << (8 * b) for b in range(8) if p.be >> b & 1)
                if p.write:
                    apply_write(regfile, p.addr, p.be, p.data)
                else:
                    data = regfile.get(p.addr, init_qword(p.addr >> 3))
                    due = max([cycle + rng.randint(*resp_delay)] +
                              [d for d, _ in responses][-1:])
                    responses.append((due, data))
                result.accesses[access_index].append(
                    (p.addr, p.write, p.be, p.data & mask if p.write else 0))
            if resp_valid and ctx.get(dut.regs.resp.ready):
                responses.popleft()
            np_req = ctx.get(dut.np_req)
            assert np_req in (0, 1), f"np_req {np_req:#b}: the completer grants one at a time"
            ip_credits = min(ip_credits + np_req, HARD_IP_CREDIT_LIMIT)
            result.max_ip_credits = max(result.max_ip_credits, ip_credits)
            result.unsupported += ctx.get(dut.unsupported)
            await ctx.tick()
            cycle += 1
        result.cycles = cycle
        for _ in range(4):            # nothing more comes out once idle
            assert not ctx.get(dut.cc.tvalid) and not ctx.get(dut.regs.req.valid)
            assert not ctx.get(dut.unsupported)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(4e-9)
    sim.add_testbench(testbench)
    sim.run()
    return result


def check(width, requests, *, mps=0, **kwargs):
    """Run ``requests`` and compare accesses, completions and refusals with the
    reference; return the result for further checks."""
    result = run(width, requests, mps=mps, **kwargs)
    regfile = {}
    completions = []
    refused = 0
    for index, request in enumerate(requests):
        kind = classify(request, mps)
        expected = ref_accesses(request, kind)
        assert result.accesses.get(index, []) == expected, \
            f"request {index} {request}: accesses {result.accesses.get(index)} != {expected}"
        cpl = ref_completion(request, kind, regfile)     # reads see earlier writes
        for addr, write, be, data in expected:
            if write:
                apply_write(regfile, addr, be, data)
        if cpl is not None:
            completions.append(cpl)
        refused += kind in ("ur", "drop")
    assert len(result.completions) == len(completions)
    for got, want in zip(result.completions, completions, strict=True):
        assert got == want, f"completion {got} != {want}"
    assert result.unsupported == refused
    assert result.max_ip_credits <= 2, f"{result.max_ip_credits} credits outstanding"
    return result


# -- Request builders -----------------------------------------------------------------------

class Requests:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.tag = 0

    def _next_tag(self):
        self.tag = (self.tag + 1) & 0xFF
        return self.tag

    def read(self, offset, ndw, first_be=0xF, last_be=None, **kwargs):
        kwargs.setdefault("req_type", ReqType.MEM_READ)
        n = ndw or 1024                     # dword_count 0 stands for 1024
        return CqRequest(addr=BAR_BASE + offset, dword_count=ndw & 0x3FF, first_be=first_be,
                         last_be=(0xF if n > 1 else 0) if last_be is None else last_be,
                         tag=self._next_tag(), requester_id=self.rng.getrandbits(16),
                         tc=self.rng.randrange(8), attr=self.rng.randrange(8), **kwargs)

    def write(self, offset, ndw, first_be=0xF, last_be=None, **kwargs):
        kwargs.setdefault("req_type", ReqType.MEM_WRITE)
        payload = self.rng.randbytes(4 * (ndw or 1024))
        return self.read(offset, ndw, first_be, last_be, payload=payload, **kwargs)

    def be(self):
        return self.rng.randrange(1, 16)

    def random_access(self, mps=0):
        """A random read or write to BAR0 that does not cross 4 KiB."""
        limit = 32 if self.rng.random() < 0.5 else (32 << mps)
        ndw = self.rng.choice([1, 1, 2, 2, self.rng.randint(1, limit)])
        offset = 4 * self.rng.randrange(BAR0_SIZE // 4)
        offset = min(offset, (offset | 0xFFF) + 1 - 4 * ndw)
        first_be = self.be()
        last_be = self.be() if ndw > 1 else 0
        if self.rng.random() < 0.5:
            return self.read(offset, ndw, first_be, last_be)
        return self.write(offset, ndw, first_be, last_be)


def unsupported_requests(r):
    """Requests the completer refuses, with expected kinds noted by classify()."""
    return [
        r.read(0x40, 33),                                       # > 128 B
        r.read(0x0, 0),                                         # 1024 DW
        r.read(0x8, 1, bar_id=2),                               # another BAR
        r.write(0x8, 1, bar_id=2),
        r.read(0x10, 1, req_type=ReqType.IO_READ),
        r.write(0x10, 1, req_type=ReqType.IO_WRITE),
        r.write(0x20, 1, req_type=ReqType.MEM_FETCH_ADD),
        r.write(0x20, 2, req_type=ReqType.MEM_SWAP),
        r.write(0x20, 8, req_type=ReqType.MEM_CAS),             # 32-byte CAS: two beats at 256
        r.read(0x20, 2, req_type=ReqType.MEM_READ_LOCKED),
        r.write(0x30, 33),                                      # > 128 B with MPS 0
        r.write(0x0, 0),                                        # 1024 DW, > MPS
        r.write(0x0, 4, req_type=ReqType.MSG_VENDOR),
    ]


# -- Tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("width", WIDTHS)
def test_single_and_double_dword_accesses(width):
    """1- and 2-DW reads and writes at every DWORD alignment, all-ones and random byte
    enables; zero-length reads and writes."""
    r = Requests(width)
    reqs = []
    for offset in range(0x100, 0x140, 4):
        reqs += [r.write(offset, 1), r.read(offset, 1),
                 r.write(offset, 1, r.be()), r.read(offset, 1, r.be()),
                 r.write(offset, 2), r.read(offset, 2),
                 r.write(offset, 2, r.be(), r.be()), r.read(offset, 2, r.be(), r.be()),
                 r.write(offset, 1, 0), r.read(offset, 1, 0)]
    result = check(width, reqs, seed=width, req_stall=0.2, resp_delay=(1, 3))
    # a 64-bit access at a QWORD-aligned offset is one 64-bit register access
    for index, req in enumerate(reqs):
        if req.dword_count == 2 and req.addr % 8 == 0 and req.first_be == req.last_be == 0xF:
            assert [(a, be) for a, _, be, _ in result.accesses[index]] == \
                [((req.addr - BAR_BASE), 0xFF)]
    # the zero-length read returns zeros without touching a register
    zero_tags = {q.tag for q in reqs if q.req_type == ReqType.MEM_READ and q.first_be == 0}
    zero = [c for c in result.completions if c.tag in zero_tags]
    assert len(zero) == len(zero_tags) == 16
    assert all(c.data == bytes(4) and c.byte_count == 1 for c in zero)


@pytest.mark.parametrize("width", WIDTHS)
def test_doorbell_stream_one_write_per_cycle(width):
    """Single-QWORD writes back to back on CQ (a host ringing doorbells): each one's
    register write goes the cycle after its beat, and the next beat is taken in that
    same cycle, so N writes take N + 1 cycles (they took 2 N before)."""
    r = Requests(width + 7)
    n = 40
    reqs = [r.write(0x1000 + 8 * (i % 16), 1) for i in range(n)]
    result = check(width, reqs)
    assert result.cycles <= n + 3


@pytest.mark.parametrize("width", WIDTHS)
def test_bursts(width):
    """Reads of 1 to 32 DWORDs and writes up to max payload size at every alignment,
    split into QWORD accesses with the right enables."""
    r = Requests(width + 1)
    reqs = []
    for ndw in range(1, 33):
        offset = 0x800 + 4 * r.rng.randrange(64)
        reqs.append(r.read(offset, ndw, r.be(), r.be() if ndw > 1 else 0))
        reqs.append(r.write(offset + 4 * r.rng.randrange(2), ndw, r.be(),
                            r.be() if ndw > 1 else 0))
    reqs += [r.write(0x1000, 32), r.read(0x1000, 32), r.write(0x1004, 32), r.read(0x1004, 32)]
    check(width, reqs, seed=width, req_stall=0.2, resp_delay=(1, 4), cc_stall=0.3)
    # max payload size 4096 B: one 1024-DW write (dword_count 0), and 256-B writes
    big = [r.write(0x2000, 0), r.read(0x2000, 32), r.read(0x2FFC, 1),
           r.write(0x3004, 64, 0xE, 0x7), r.read(0x3000, 32)]
    check(width, big, mps=5, seed=width, cq_gap=0.3)
    check(width, [r.write(0x3004, 63, 0xC, 0x3), r.write(0x3100, 64)], mps=1)


@pytest.mark.parametrize("width", WIDTHS)
def test_unsupported(width):
    """Long reads, other BARs, I/O, atomics, locked reads → UR completions; long writes,
    writes to other BARs and messages dropped; the requests around them are unharmed."""
    r = Requests(width + 2)
    reqs = []
    for bad in unsupported_requests(r):
        reqs += [bad, r.read(0x18, 2), r.write(0x18, 1), r.read(0x18, 2)]
    result = check(width, reqs, seed=3, cq_gap=0.2, cc_stall=0.2)
    ur = [c for c in result.completions if c.status == CplStatus.UR]
    assert len(ur) == 9


@pytest.mark.parametrize("width", WIDTHS)
def test_discontinue(width):
    """A request whose last beat has discontinue set is discarded [PG213]."""
    r = Requests(width + 3)
    reqs = [r.write(0x28, 1), r.read(0x28, 1), r.write(0x28, 1), r.read(0x28, 1)]
    flag = tuser_layout("cq", width)["discontinue"].offset

    def mutate(index, beats):
        if index in (0, 1):
            beats[-1] = dict(beats[-1], tuser=beats[-1]["tuser"] | 1 << flag)
        return beats
    result = run(width, reqs, mutate=mutate, completions=1)
    assert result.accesses.get(0) is None and result.accesses.get(1) is None
    assert result.unsupported == 2
    assert [(a, w) for a, w, _, _ in result.accesses[2] + result.accesses[3]] == [
        (0x28, 1), (0x28, 0)]
    assert len(result.completions) == 1 and result.completions[0].tag == reqs[3].tag


@pytest.mark.parametrize("width", WIDTHS)
def test_back_to_back_reads_with_credits(width):
    """Back-to-back reads held by the hard IP's credit counter: all complete in order, at
    most two credits are ever granted ahead, and a read turns around in 3 cycles."""
    r = Requests(width + 4)
    reqs = [r.read(8 * i, 1 + i % 2) for i in range(40)]
    result = check(width, reqs, seed=5)
    assert result.turnaround == [3] * len(reqs)
    assert result.max_ip_credits == 2
    assert [c.tag for c in result.completions] == [q.tag for q in reqs]
    # a stalled CC side backs reads up: credits still stay at most 2
    check(width, reqs + [r.write(0, 1)] + reqs, seed=6, cc_stall=0.7, req_stall=0.5)


@pytest.mark.parametrize("width", WIDTHS)
def test_random_traffic(width):
    """Random reads, writes and refused requests with gaps on CQ, backpressure on CC and
    on the register bus, and random register latency."""
    r = Requests(width + 5)
    bad = unsupported_requests(r)
    reqs = [r.rng.choice(bad) if r.rng.random() < 0.1 else r.random_access(mps=1)
            for _ in range(150)]
    check(width, reqs, mps=1, seed=width, cq_gap=0.3, cc_stall=0.4, req_stall=0.3,
          resp_delay=(1, 6))


def test_verilog():
    for width in WIDTHS:
        text = verilog.convert(UspCompleter(width), name="t", emit_src=False)
        assert "module t" in text
