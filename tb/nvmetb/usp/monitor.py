"""Cycle monitor for the hard IP's AXI4-Stream inputs in cocotb.

:class:`BeatMonitor` samples one of the streams the design drives into the hard IP (RQ or
CC) at every rising edge of ``user_clk`` and hands it to a bench parser
(:class:`~nvmetb.usp.rq.RqParser`, :class:`~nvmetb.usp.cq.CcParser`): each transferred
beat to ``feed``, each cycle without ``tvalid`` to ``gap``, so a TLP whose ``tvalid``
drops between its first and last beat — which the hard IP nullifies [PG213] — is caught
where it happens, together with every framing rule the parser knows. It follows the
design's reset (``user_reset`` or link down: a TLP cut by a reset is not the design's
fault) and a function-level reset (a parser is made anew when ``reset_when()`` is true).

Breaches go to ``violations`` (a list, possibly shared with other checkers) and the log;
the monitor then starts over with a new parser.
"""

import logging

import cocotb
from cocotb.triggers import RisingEdge

__all__ = ["BeatMonitor"]

log = logging.getLogger("tb")


class BeatMonitor:
    """``prefix``: ``"s_axis_rq"`` or ``"s_axis_cc"``; ``make_parser()``: a fresh parser.
    ``reset_when()``: true while the design is (being) reset."""

    def __init__(self, dut, prefix, make_parser, *, violations=None, clock=None,
                 reset_when=None, on_tlps=None):
        self.dut = dut
        self.prefix = prefix
        self.make_parser = make_parser
        self.parser = make_parser()
        self.violations = violations if violations is not None else []
        self.clk = clock if clock is not None else dut.user_clk
        self.reset_when = reset_when or (lambda: False)
        self.on_tlps = on_tlps          # called with the TLPs each transferred beat ends
        self.beats = 0
        self.gaps_checked = 0
        self._task = None

    def start(self):
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        dut, p = self.dut, self.prefix
        valid, ready = getattr(dut, f"{p}_tvalid"), getattr(dut, f"{p}_tready")
        tdata, tkeep = getattr(dut, f"{p}_tdata"), getattr(dut, f"{p}_tkeep")
        tlast, tuser = getattr(dut, f"{p}_tlast"), getattr(dut, f"{p}_tuser")
        while True:
            await RisingEdge(self.clk)
            if (int(dut.user_reset.value) or not int(dut.user_lnk_up.value)
                    or self.reset_when()):
                self.parser = self.make_parser()
                continue
            try:
                if not int(valid.value):
                    self.gaps_checked += 1
                    self.parser.gap()
                elif int(ready.value) & 1:
                    self.beats += 1
                    done = self.parser.feed({
                        "tdata": int(tdata.value), "tkeep": int(tkeep.value),
                        "tlast": int(tlast.value), "tuser": int(tuser.value)})
                    if done and self.on_tlps is not None:
                        self.on_tlps(done)
            except AssertionError as error:
                message = f"{p}: {error}"
                log.error("monitor: %s", message)
                self.violations.append(message)
                self.parser = self.make_parser()
