"""Bench side of the backend interface (docs/backend.md): the core's role, played by the
bench against a backend (the RAM disk, the AXI4 master, a user's own), and the AXI4
memory the AXI4 master talks to.

- :mod:`.behaviour`: the initiator, one clock edge at a time, independent of the
  simulator: issues READ / WRITE / ZERO / FLUSH, sends write data, takes read data and
  dones, and checks the backend's side of the contract; :class:`~.behaviour.Namespace`,
  the shadow of the namespace; :class:`~.behaviour.RandomMix`, random command mixes.
- :mod:`.amaranth_port`, :mod:`.cocotb_port`: the initiator on a backend port in the
  Amaranth simulator and in cocotb.
- :mod:`.axi_rules`: an AXI4 master's rules, checked one clock edge at a time, and a small
  AXI4 memory for the Amaranth simulator (:mod:`.amaranth_axi`).
- :mod:`.cocotb_axi`: cocotbext-axi's ``AxiRam`` on any AXI4 port, with back-pressure,
  error regions and the rule checker (:func:`~.cocotb_axi.attach_axi_ram`).

The simulator-specific modules import their simulator; import them directly.
"""
