"""Small command-line scripts kept under their classic module paths (``python -m aodncore.bin.<name>``)."""
