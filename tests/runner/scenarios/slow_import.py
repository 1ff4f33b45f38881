"""Imported by lazy.py inside main(): costs 0.6 s to import, like a heavy simulation package."""

import time

time.sleep(0.6)
VALUE = "slow module loaded"
