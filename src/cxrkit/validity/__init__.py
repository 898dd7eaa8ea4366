"""Validity guards: leakage, duplicates, confounding, shortcut probes."""
