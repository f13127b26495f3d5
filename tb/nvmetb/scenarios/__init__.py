"""Scenarios written once and run on every bench: register-level (:mod:`.registers`),
host-driver queue and admin scenarios (:mod:`.queues`) and the UltraScale+ adapter's own
(:mod:`.usp`)."""
