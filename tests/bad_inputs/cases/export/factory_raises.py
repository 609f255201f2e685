"""A factory function that fails before returning a model."""


def make():
    raise RuntimeError("weights not found: ./weights.bin")
