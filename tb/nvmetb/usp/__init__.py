"""Bench models of the UltraScale+ PCIe hard IP's AXI4-Stream interfaces, in plain Python.

Beats are dicts ``{"tdata", "tkeep", "tlast", "tuser"}`` of integers, packed with the
layouts of :mod:`nvmecore.pcie.usp_layouts`, so the same models drive the Amaranth
simulator and cocotb. ``rc`` builds requester-completion beats (split, interleaved,
straddled, faulty), ``rq`` parses requester-request beats, ``cq`` builds completer-request
beats and parses completer-completion beats.
"""
