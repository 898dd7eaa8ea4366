"""cxrkit datasets."""
