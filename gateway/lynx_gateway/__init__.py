"""REST gateway: the public HTTP/JSON API, translated to the services' gRPC."""
