"""SegServing server: transports (HTTP, gRPC) over a dataplane that dispatches to inference workers."""
