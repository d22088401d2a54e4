"""Load, faults and bad input: see docs/reliability.md."""
