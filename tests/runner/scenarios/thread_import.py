"""Imported by lazy.py in mode "thread": starts a thread when imported (a fork server must never hold one)."""

import threading
import time

threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
