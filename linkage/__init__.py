"""linkage: privacy-preserving record linkage with keyed Bloom-filter encodings."""

__version__ = "0.1.0"

__all__ = ["__version__"]
