"""Classic path ``aodncore.util.external.astropy``: see :mod:`.decorators`."""
