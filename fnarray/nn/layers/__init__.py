"""The layer modules, one file per family; re-exported by ``fnarray.nn``."""
