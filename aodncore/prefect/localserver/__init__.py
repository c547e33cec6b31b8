"""A local Prefect server in the background, shared by every ``aodncore`` run on one ``PREFECT_HOME``."""
