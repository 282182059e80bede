"""Collectors that write navtune episode datasets: the house expert (ObjectNav / VLN), R2R low-level
labels, keyboard teleoperation, and policy roll-outs with expert relabelling (DAgger)."""
