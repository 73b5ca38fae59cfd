"""raidsim: rehearse an SMS raid before launch, and survive it after."""

__version__ = "0.1.0"
