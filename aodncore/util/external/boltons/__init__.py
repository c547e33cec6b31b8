"""Classic path ``aodncore.util.external.boltons``: see :mod:`.setutils`."""
