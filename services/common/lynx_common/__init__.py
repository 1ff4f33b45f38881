"""Code shared by every Lynx service: server bootstrap, logging, addresses."""
