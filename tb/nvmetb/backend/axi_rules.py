"""An AXI4 port, one clock edge at a time, independent of the simulator: the rules a
master keeps (:class:`AxiRules`) and a small AXI4 memory (:class:`AxiMemoryModel`) for
the Amaranth simulator (cocotb benches use cocotbext-axi's ``AxiRam``; see
:mod:`.cocotb_axi`).

Both take the port's signals as sampled at a clock edge, as a dict keyed by the AXI4
names in lower case (``awvalid``, ``awaddr``, ..., as
:class:`~nvmecore.backend.axi.Axi4Signature` names its members).
"""

import random
from collections import deque
from dataclasses import dataclass

from nvmecore.backend.axi import AXI_CACHE, AXI_PROT, AXI_QOS, AxiBurst, AxiResp

__all__ = ["AxiViolation", "AxiRules", "AxiMemorySettings", "AXI_MEMORY_SETTINGS",
           "AxiMemoryModel", "MASTER_SIGNALS", "SLAVE_SIGNALS", "CHANNEL_PAYLOAD"]

#: Signals the master drives and the slave drives, by AXI4 name.
MASTER_SIGNALS = (
    "awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot", "awqos",
    "awvalid", "wdata", "wstrb", "wlast", "wvalid", "bready",
    "arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot", "arqos",
    "arvalid", "rready")
SLAVE_SIGNALS = ("awready", "wready", "bid", "bresp", "bvalid", "arready", "rid", "rdata",
                 "rresp", "rlast", "rvalid")
#: Payload signals of each channel (held with valid until ready).
CHANNEL_PAYLOAD = {
    "aw": ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
           "awqos"),
    "w":  ("wdata", "wstrb", "wlast"),
    "ar": ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot",
           "arqos"),
    "b":  ("bid", "bresp"),
    "r":  ("rid", "rdata", "rresp", "rlast"),
}


class AxiViolation(AssertionError):
    """An AXI4 rule was broken."""


class AxiRules:
    """Checks an AXI4 port one clock edge at a time, chiefly the master's side.

    - Every channel: once ``valid`` is high it stays high, with the same payload, until
      ``ready`` [AMBA AXI4 A3.2.1].
    - AW / AR: INCR, full width (AxSIZE = log2 of the data bytes), aligned, at most 4 KiB
      and not crossing a 4 KiB boundary [A3.4.1]; ID ``axi_id``; AxLOCK 0, AxCACHE /
      AxPROT / AxQOS as nvmecore documents; the burst inside ``window`` (AXI addresses
      ``[start, end)``) if given.
    - At most ``outstanding`` read bursts (AR taken, last R not) and as many write bursts
      (AW taken, B not) [the backend's own limit].
    - W: beats in AW order, exactly AxLEN + 1 per burst, WLAST on the last one only; no W
      beat offered before its burst's AW was taken at an earlier edge (the AW-first order
      the backend keeps); WSTRB all ones, or all zeroes while :attr:`null_strobes` is set
      (an abort's drain).
    - R / B: only for bursts in flight, RLAST on the last beat of the burst, IDs as
      issued (the slave's side).

    Counts (:attr:`bursts`, :attr:`max_reads`, :attr:`max_writes`, ...) say what the
    traffic exercised; with ``record``, :attr:`history` lists every burst taken as
    ``(channel, address, beats)``.
    """

    def __init__(self, data_width, *, axi_id=None, outstanding=None, window=None,
                 name="axi", record=False):
        self.beat_bytes = data_width // 8
        self.size = (self.beat_bytes - 1).bit_length()
        self.axi_id = axi_id
        self.outstanding = outstanding
        self.window = window
        self.name = name
        self.cycle = 0
        self.null_strobes = False
        self._held = {}
        self._reads = deque()           # [id, beats left] per AR taken
        self._writes = deque()          # [edge AW taken, beats left] per AW taken
        self._b_owed = deque()          # id per write burst whose W beats all went
        self.bursts = {"ar": 0, "aw": 0}
        self.beats = {"r": 0, "w": 0}
        self.max_reads = 0
        self.max_writes = 0
        self.errors = {"r": 0, "b": 0}
        self.null_beats = 0
        self.history = [] if record else None
        self.aw_edges = []              # the edge each AW was taken at, in order
        self.b_edges = []               # the edge each B came at, in order

    def _fail(self, message):
        raise AxiViolation(f"{self.name}, edge {self.cycle}: {message}")

    def step(self, s):
        """``s``: every signal of the port as sampled at this clock edge."""
        self.cycle += 1
        for channel, payload in CHANNEL_PAYLOAD.items():
            self._check_held(channel, s, payload)
        if s["wvalid"]:
            self._check_w_offer(s)
        if s["awvalid"] and s["awready"]:
            self._address("aw", s)
            self._writes.append([self.cycle, s["awlen"] + 1, s["awid"]])
            self.aw_edges.append(self.cycle)
        if s["arvalid"] and s["arready"]:
            self._address("ar", s)
            self._reads.append([s["arid"], s["arlen"] + 1])
        if s["wvalid"] and s["wready"]:
            self._w_beat(s)
        if s["rvalid"] and s["rready"]:
            self._r_beat(s)
        if s["bvalid"] and s["bready"]:
            if not self._b_owed:
                self._fail("B response with no write burst waiting for one")
            bid = self._b_owed.popleft()
            self.b_edges.append(self.cycle)
            if s["bid"] != bid:
                self._fail(f"BID {s['bid']:#x}, expected {bid:#x}")
            self.errors["b"] += s["bresp"] >= AxiResp.SLVERR.value
        writes = len(self._writes) + len(self._b_owed)
        self.max_reads = max(self.max_reads, len(self._reads))
        self.max_writes = max(self.max_writes, writes)
        if self.outstanding is not None:
            if len(self._reads) > self.outstanding:
                self._fail(f"{len(self._reads)} read bursts in flight, limit "
                           f"{self.outstanding}")
            if writes > self.outstanding:
                self._fail(f"{writes} write bursts in flight, limit {self.outstanding}")

    def _check_held(self, channel, s, payload):
        valid = s[f"{channel}valid"]
        value = tuple(s[n] for n in payload)
        held = self._held.get(channel)
        if held is not None and not (valid and value == held):
            what = "valid dropped" if not valid else "payload changed"
            self._fail(f"{channel.upper()}: {what} before ready "
                       f"({dict(zip(payload, held, strict=True))})")
        self._held[channel] = value if valid and not s[f"{channel}ready"] else None

    def _address(self, ax, s):
        self.bursts[ax] += 1
        addr, beats = s[f"{ax}addr"], s[f"{ax}len"] + 1
        if self.history is not None:
            self.history.append((ax, addr, beats))
        length = beats * self.beat_bytes
        where = f"{ax.upper()} {addr:#x} +{length:#x}"
        if s[f"{ax}burst"] != AxiBurst.INCR.value:
            self._fail(f"{where}: burst type {s[f'{ax}burst']}, expected INCR")
        if s[f"{ax}size"] != self.size:
            self._fail(f"{where}: size {s[f'{ax}size']}, expected {self.size} (full width)")
        if addr % self.beat_bytes:
            self._fail(f"{where}: not aligned to the data width")
        if length > 4096 or addr // 4096 != (addr + length - 1) // 4096:
            self._fail(f"{where}: longer than 4 KiB or crossing a 4 KiB boundary")
        if self.axi_id is not None and s[f"{ax}id"] != self.axi_id:
            self._fail(f"{where}: ID {s[f'{ax}id']:#x}, expected {self.axi_id:#x}")
        expect = {"lock": 0, "cache": AXI_CACHE, "prot": AXI_PROT, "qos": AXI_QOS}
        for field, value in expect.items():
            if s[f"{ax}{field}"] != value:
                self._fail(f"{where}: {ax.upper()}{field.upper()} {s[ax + field]:#x}, "
                           f"expected {value:#x}")
        if self.window is not None:
            start, end = self.window
            if not (start <= addr and addr + length <= end):
                self._fail(f"{where}: outside [{start:#x}, {end:#x})")

    def _check_w_offer(self, s):
        if not self._writes or self._writes[0][0] >= self.cycle:
            self._fail("W beat offered before the AW of its burst was taken")

    def _w_beat(self, s):
        burst = self._writes[0]
        burst[1] -= 1
        self.beats["w"] += 1
        if bool(s["wlast"]) != (burst[1] == 0):
            self._fail(f"WLAST={s['wlast']} with {burst[1]} beats of the burst to go")
        all_ones = (1 << self.beat_bytes) - 1
        if s["wstrb"] != all_ones:
            if not (self.null_strobes and s["wstrb"] == 0):
                self._fail(f"WSTRB {s['wstrb']:#x}, expected all ones")
            self.null_beats += 1
        if burst[1] == 0:
            self._writes.popleft()
            self._b_owed.append(burst[2])

    def _r_beat(self, s):
        if not self._reads:
            self._fail("R beat with no read burst in flight")
        burst = self._reads[0]
        if s["rid"] != burst[0]:
            self._fail(f"RID {s['rid']:#x}, expected {burst[0]:#x}")
        burst[1] -= 1
        self.beats["r"] += 1
        self.errors["r"] += s["rresp"] >= AxiResp.SLVERR.value
        if bool(s["rlast"]) != (burst[1] == 0):
            self._fail(f"RLAST={s['rlast']} with {burst[1]} beats of the burst to go")
        if burst[1] == 0:
            self._reads.popleft()

    @property
    def idle(self):
        return not (self._reads or self._writes or self._b_owed)


@dataclass(frozen=True)
class AxiMemorySettings:
    """How :class:`AxiMemoryModel` behaves: ``*_stall`` the probability that a ready is
    low in a cycle, ``*_gap`` that no R beat / B response is offered in a cycle where one
    could be, ``latency`` the cycles from the AR (last W beat) to the first R beat (B)."""
    ar_stall: float = 0.0
    aw_stall: float = 0.0
    w_stall: float = 0.0
    r_gap: float = 0.0
    b_gap: float = 0.0
    latency: int = 2
    seed: int = 0


AXI_MEMORY_SETTINGS = {
    "fast": AxiMemorySettings(latency=1),
    "busy": AxiMemorySettings(ar_stall=0.3, aw_stall=0.3, w_stall=0.3, r_gap=0.3, b_gap=0.3,
                              latency=12),
}


class AxiMemoryModel:
    """An AXI4 memory of ``size`` bytes at AXI address ``base``, one clock edge at a
    time: bursts in order, one ID; AxSIZE full width. ``errors`` lists AXI address ranges
    ``(start, end, resp)`` whose beats answer ``resp`` (SLVERR or DECERR) and are neither
    read nor written; anything outside the memory answers DECERR."""

    def __init__(self, data_width, size, base=0, settings: AxiMemorySettings | None = None,
                 *, errors=(), rng=None):
        self.beat_bytes = data_width // 8
        self.base = base
        self.mem = bytearray(size)
        self.settings = settings = settings or AxiMemorySettings()
        self.rng = rng or random.Random(settings.seed)
        self.errors = list(errors)
        self.cycle = 0
        self._r = deque()               # [ready edge, deque of (data, resp, last), id]
        self._aw = deque()              # (addr, beats, id) taken, W beats to come
        self._w_beat = 0
        self._w_resp = AxiResp.OKAY
        self._b = deque()               # (ready edge, resp, id)
        self._out = {n: 0 for n in SLAVE_SIGNALS}

    def _resp(self, addr):
        for start, end, resp in self.errors:
            if start <= addr < end:
                return resp
        if not self.base <= addr < self.base + len(self.mem):
            return AxiResp.DECERR
        return AxiResp.OKAY

    def step(self, s):
        """``s``: the port's signals sampled at this edge. Returns the slave's outputs
        for the next cycle, by name."""
        self.cycle += 1
        st, rng, out = self.settings, self.rng, self._out
        n = self.beat_bytes
        if s["arvalid"] and out["arready"]:
            beats = deque()
            for i in range(s["arlen"] + 1):
                addr = s["araddr"] + i * n
                resp = self._resp(addr)
                data = 0
                if resp == AxiResp.OKAY:
                    offset = addr - self.base
                    data = int.from_bytes(self.mem[offset:offset + n], "little")
                beats.append((data, resp, i == s["arlen"]))
            self._r.append([self.cycle + st.latency - 1, beats, s["arid"]])
        if s["awvalid"] and out["awready"]:
            self._aw.append((s["awaddr"], s["awlen"] + 1, s["awid"]))
        if s["wvalid"] and out["wready"]:
            addr, beats, awid = self._aw[0]
            addr += self._w_beat * n
            resp = self._resp(addr)
            if resp == AxiResp.OKAY:
                offset = addr - self.base
                for i in range(n):
                    if s["wstrb"] >> i & 1:
                        self.mem[offset + i] = s["wdata"] >> (8 * i) & 0xFF
            elif self._w_resp == AxiResp.OKAY:
                self._w_resp = resp
            self._w_beat += 1
            if self._w_beat == beats:
                self._aw.popleft()
                self._b.append((self.cycle + st.latency - 1, self._w_resp, awid))
                self._w_beat, self._w_resp = 0, AxiResp.OKAY
        if out["rvalid"] and s["rready"]:
            self._r[0][1].popleft()
            if not self._r[0][1]:
                self._r.popleft()
            out["rvalid"] = 0
        if out["bvalid"] and s["bready"]:
            self._b.popleft()
            out["bvalid"] = 0
        if not out["rvalid"] and self._r and self._r[0][0] <= self.cycle \
                and rng.random() >= st.r_gap:
            data, resp, last = self._r[0][1][0]
            out.update(rvalid=1, rdata=data, rresp=resp.value, rlast=int(last),
                       rid=self._r[0][2])
        if not out["bvalid"] and self._b and self._b[0][0] <= self.cycle \
                and rng.random() >= st.b_gap:
            _, resp, bid = self._b[0]
            out.update(bvalid=1, bresp=resp.value, bid=bid)
        out["arready"] = int(rng.random() >= st.ar_stall)
        out["awready"] = int(rng.random() >= st.aw_stall)
        out["wready"] = int(bool(self._aw) and rng.random() >= st.w_stall)
        return dict(out)

    def read(self, addr, length):
        """Bytes at AXI address ``addr``, straight from the memory."""
        offset = addr - self.base
        return bytes(self.mem[offset:offset + length])
