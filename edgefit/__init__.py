"""edgefit: compile a device budget into a deployable vision model."""
__version__ = "0.1.0"
