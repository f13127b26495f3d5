"""The UltraScale+ hard IP's side of the legacy interrupt handshake, for cocotb
[PG213 "Legacy Interrupt Mode"].

Each change of ``cfg_interrupt_int[0]`` is an Assert_INTA or Deassert_INTA message that
the IP sends to the root complex, acknowledged by a one-cycle ``cfg_interrupt_sent`` pulse
:data:`INTX_SENT_CYCLES` later; the design must not change ``cfg_interrupt_int`` again
before that acknowledgement (a violation here). :attr:`IntxLink.level` is INTx as the
host sees it: the level the last message sent.

    intx = IntxLink(dut, clock, violations).start()
    ...
    intx.level, intx.messages
"""

import logging

import cocotb
from cocotb.triggers import RisingEdge

__all__ = ["IntxLink", "INTX_SENT_CYCLES"]

log = logging.getLogger("tb")

#: Cycles from a change of cfg_interrupt_int to the hard IP's cfg_interrupt_sent (the
#: message has to get onto the link).
INTX_SENT_CYCLES = 24


class IntxLink:
    def __init__(self, dut, clock, violations: list):
        self.dut = dut
        self.clock = clock
        self.violations = violations
        self.level = False          # INTx on the link: the level the last message sent
        self.messages = 0
        self.cycle = 0
        self._task = None

    def start(self):
        self.dut.cfg_interrupt_sent.value = 0
        self._task = cocotb.start_soon(self._run())
        return self

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self):
        dut = self.dut
        level = asked = 0
        due = None
        while True:
            await RisingEdge(self.clock)
            self.cycle += 1
            dut.cfg_interrupt_sent.value = 0
            now = int(dut.cfg_interrupt_int.value) & 1
            if due is not None:
                if now != asked:
                    self.violations.append(
                        f"cfg_interrupt_int changed to {now} at cycle {self.cycle} before "
                        f"cfg_interrupt_sent acknowledged the change to {asked}")
                    log.error("usp: %s", self.violations[-1])
                if self.cycle >= due:
                    dut.cfg_interrupt_sent.value = 1
                    level, due = asked, None
                    self.level = bool(level)
                    self.messages += 1
            elif now != level:
                asked, due = now, self.cycle + INTX_SENT_CYCLES
