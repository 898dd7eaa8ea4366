"""cxrkit evaluation."""
