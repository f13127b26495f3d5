"""AXI4 memory on any AXI4 master port of a design under cocotb: cocotbext-axi's RAM
slave, random back-pressure on every channel, address ranges that answer SLVERR or
DECERR, and the AXI4 rule checker (:class:`~.axi_rules.AxiRules`) on the port.

    memory = attach_axi_ram(dut, "axi_", dut.clk, dut.rst, pause=0.3, seed=1,
                            errors=[(0x8000_1000, 0x8000_2000, AxiResp.SLVERR)],
                            axi_id=cfg.axi_id, outstanding=cfg.axi_outstanding,
                            window=(cfg.axi_base, cfg.axi_base + cfg.namespace_bytes))
    ...
    ns.check(0, memory.read(cfg.axi_base, cfg.namespace_bytes))   # vs. the shadow
    memory.stop()

``prefix`` is what ``AxiBus.from_prefix`` takes: ``"axi_"`` reaches the core's and the
backend's ``axi__awaddr``, ...; ``"m_axi"`` the FPGA top's ``m_axi_awaddr``.

cocotbext-axi facilities used: ``AxiBus.from_prefix``; ``AxiRamWrite`` / ``AxiRamRead``
(the RAM slave's two halves over one sparse memory, as ``AxiRam`` builds them), whose
``_write`` / ``_read`` hooks answer SLVERR when they raise (subclassed here to raise on
the error ranges, and to turn the response into DECERR where a range says so); and
``set_pause_generator`` on each channel (AW, W, B, AR, R) for back-pressure and latency.
"""

import logging
import random

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.memory import Memory

from nvmecore.backend.axi import AxiResp

from .axi_rules import CHANNEL_PAYLOAD, AxiRules, AxiViolation

__all__ = ["AxiMemory", "attach_axi_ram", "backend_axi_ram", "top_axi_ram"]


class _Injected(Exception):
    """Raised by a RAM hook on an error range; cocotbext-axi answers SLVERR."""

    def __init__(self, resp):
        super().__init__(resp.name)
        self.resp = resp


def _error_resp(errors, addr, length):
    for start, end, resp in errors:
        if addr < end and start < addr + length:
            return resp
    return None


def _override_resp(source, field, hook):
    """Make ``source.send`` (a cocotbext-axi B or R source) set ``field`` to what
    ``hook()`` returns, when it returns a response."""
    send = source.send

    async def send_with_resp(item):
        resp = hook()
        if resp is not None:
            setattr(item, field, resp.value)
        await send(item)
    source.send = send_with_resp


class _RamWrite(AxiRamWrite):
    def __init__(self, bus, clock, reset, *, mem, errors):
        super().__init__(bus, clock, reset, mem=mem)
        self.errors = errors
        self._resp = None               # the error of the burst being written, if any
        _override_resp(self.b_channel, "bresp", self._take_resp)

    def _take_resp(self):
        resp, self._resp = self._resp, None
        return resp

    async def _write(self, address, data):
        resp = _error_resp(self.errors, address, len(data))
        if resp is not None:
            self._resp = self._resp or resp
            raise _Injected(resp)
        await super()._write(address, data)


class _RamRead(AxiRamRead):
    def __init__(self, bus, clock, reset, *, mem, errors):
        super().__init__(bus, clock, reset, mem=mem)
        self.errors = errors
        self._resp = None               # the error of the beat being sent, if any
        _override_resp(self.r_channel, "rresp", self._take_resp)

    def _take_resp(self):
        resp, self._resp = self._resp, None
        return resp

    async def _read(self, address, length):
        resp = _error_resp(self.errors, address, length)
        if resp is not None:
            self._resp = resp
            raise _Injected(resp)
        return await super()._read(address, length)


def _bit(handle, rules):
    try:
        return int(handle.value)
    except ValueError:
        raise AxiViolation(f"{rules.name}: {handle._name} is {handle.value} (edge "
                           f"{rules.cycle + 1})") from None


def _pauses(rng, probability):
    while True:
        yield rng.random() < probability


class AxiMemory(Memory):
    """cocotbext-axi's AXI4 RAM on one port, with error ranges and a rule checker.

    ``mem`` / :meth:`read` / :meth:`write` are the memory (cocotbext-axi's ``Memory``:
    sparse, by AXI address); ``rules`` is the :class:`AxiRules` checking the port (None
    without it). ``errors``: AXI address ranges ``(start, end, resp)``: every beat
    touching one answers ``resp`` (SLVERR or DECERR) and writes nothing.
    """

    def __init__(self, dut, prefix, clock, reset=None, *, size=1 << 62, errors=(),
                 rules: AxiRules | None = None, log_level=logging.ERROR):
        super().__init__(size)
        self.errors = list(errors)
        for _, _, resp in self.errors:
            if resp not in (AxiResp.SLVERR, AxiResp.DECERR):
                raise ValueError(f"an error range answers SLVERR or DECERR, not {resp}")
        bus = AxiBus.from_prefix(dut, prefix)
        self.write_if = _RamWrite(bus.write, clock, reset, mem=self.mem, errors=self.errors)
        self.read_if = _RamRead(bus.read, clock, reset, mem=self.mem, errors=self.errors)
        for half in (self.write_if, self.read_if):
            half.log.setLevel(log_level)
        self.channels = {
            "aw": self.write_if.aw_channel, "w": self.write_if.w_channel,
            "b": self.write_if.b_channel, "ar": self.read_if.ar_channel,
            "r": self.read_if.r_channel,
        }
        self.rules = rules
        self.clock, self.reset = clock, reset
        self._signals = {
            name: getattr(dut, f"{prefix}_{name}")
            for channel, payload in CHANNEL_PAYLOAD.items()
            for name in (f"{channel}valid", f"{channel}ready", *payload)
        }
        self._task = cocotb.start_soon(self._monitor()) if rules is not None else None

    def set_pauses(self, probability, seed=0, channels=None):
        """Pause each channel (``channels``, default all five) at random with
        ``probability`` per cycle: AW / W / AR ready low, B / R valid held back."""
        rng = random.Random(seed)
        for name, channel in self.channels.items():
            if channels is None or name in channels:
                channel.set_pause_generator(
                    _pauses(random.Random(rng.random()), probability) if probability
                    else None)

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for channel in self.channels.values():
            channel.clear_pause_generator()

    async def _monitor(self):
        """Feed :attr:`rules` at every rising edge. Handshake signals are read at every
        edge, a channel's other signals only while its valid is high, and the data
        signals only when the rules need them (reading a wide signal is what costs):
        WDATA while a W beat waits for WREADY or waited at the edge before (the held-
        payload rule), RDATA never (the initiator checks read data). Every master
        output read must be 0 or 1, never X or Z."""
        sig, rules = self._signals, self.rules
        master = {"aw", "w", "ar"}
        fields = {channel: [n for n in payload if n not in ("wdata", "rdata")]
                  for channel, payload in CHANNEL_PAYLOAD.items()}
        w_held = False
        while True:
            await RisingEdge(self.clock)
            if self.reset is not None and self.reset.value == 1:
                continue
            s = {"wdata": 0, "rdata": 0}
            for channel, names in fields.items():
                valid = s[f"{channel}valid"] = _bit(sig[f"{channel}valid"], rules)
                ready = s[f"{channel}ready"] = _bit(sig[f"{channel}ready"], rules)
                if channel == "w" and (valid and not ready or w_held):
                    names = [*names, "wdata"]
                for name in names:
                    s[name] = 0
                    if valid:
                        try:
                            s[name] = int(sig[name].value)
                        except ValueError:
                            if channel in master:
                                raise AxiViolation(
                                    f"{rules.name}: {name} is {sig[name].value} while "
                                    f"{channel.upper()}VALID is high") from None
            w_held = bool(s["wvalid"] and not s["wready"])
            rules.step(s)


def attach_axi_ram(dut, prefix, clock, reset=None, *, pause=0.0, seed=0, errors=(),
                   size=None, check=True, axi_id=None, outstanding=None, window=None,
                   data_width=None) -> AxiMemory:
    """An :class:`AxiMemory` on ``dut``'s AXI4 master port ``prefix`` (``"axi_"``,
    ``"m_axi"``), started: pauses with ``pause`` probability on every channel, the error
    ranges ``errors`` (AXI addresses ``(start, end, resp)``), and unless ``check`` is
    False an :class:`AxiRules` checker with ``axi_id``, ``outstanding`` and ``window``
    (AXI addresses ``(start, end)`` every burst must stay in). ``size``: bytes of
    memory, addresses taken modulo it; by default the AXI address space, at most 2^62
    bytes (cocotbext-axi's memory cannot be larger)."""
    if size is None:
        size = 1 << min(62, len(getattr(dut, f"{prefix}_awaddr")))
    if data_width is None:
        data_width = len(getattr(dut, f"{prefix}_wdata"))
    rules = AxiRules(data_width, axi_id=axi_id, outstanding=outstanding, window=window,
                     name=f"{prefix.rstrip('_')} rules", record=True) if check else None
    memory = AxiMemory(dut, prefix, clock, reset, size=size, errors=errors, rules=rules)
    memory.set_pauses(pause, seed)
    return memory


def backend_axi_ram(dut, config, prefix, clock, reset=None, *, pause=0.0, seed=0):
    """For the AXI4 backend's master port ``prefix`` of a build with
    ``config.backend == "axi"`` (``"axi_"`` on the core, ``"m_axi"`` on the FPGA top):
    drive the slave's signals to 0 now (they are undriven until the memory drives them)
    and return a function that attaches :func:`attach_axi_ram` (``pause``, ``seed``; the
    rules checked for the build's ID, outstanding count and namespace window) once the
    clock runs, and returns its memory. Without the AXI4 backend the function does
    nothing."""
    if config.backend != "axi":
        return lambda: None
    from amaranth.lib.wiring import In

    from nvmecore.backend.axi import Axi4Signature

    for name, member in Axi4Signature(config.axi_addr_width, config.data_width,
                                      config.axi_id_width).members.items():
        if member.flow == In:
            getattr(dut, f"{prefix}_{name}").value = 0
    return lambda: attach_axi_ram(
        dut, prefix, clock, reset, pause=pause, seed=seed, size=1 << 32,
        axi_id=config.axi_id, outstanding=config.axi_outstanding,
        window=(config.axi_base, config.axi_base + config.namespace_bytes))


def top_axi_ram(dut, config, *, pause=0.0, seed=0):
    """:func:`backend_axi_ram` on the FPGA top's ``m_axi_*`` port (``user_clk``)."""
    return backend_axi_ram(dut, config, "m_axi", dut.user_clk, pause=pause, seed=seed)
