"""cxrkit transforms."""
