"""Bench drivers of the core's DMA ports: the per-cycle behaviour (:mod:`.behaviour`) and
its drivers for the Amaranth simulator (:mod:`.amaranth_ports`) and cocotb
(:mod:`.cocotb_ports`), and host memory behind the UltraScale+ adapter's requester
interfaces (:mod:`.usp_ports`)."""
