"""The Python volume server: storage engine, HTTP handlers, gRPC services, heartbeat."""
