"""Namespace backends: the interface the core's NVM I/O path drives
(:mod:`.interface`, docs/backend.md) and the backends that come with the core: an on-chip
RAM disk (:mod:`.ramdisk`) and an AXI4 master to memory (:mod:`.axi`)."""
