"""The serving layer every mode runs on: what gateway/ (relays to Go), native/ (the Python volume
server) and difftool/ (dual-run) share, and nothing that belongs to one of them.

- `routes`: endpoint names (HTTP by port and operation, gRPC by full method) and the immutable
  route table that sends each endpoint to `go`, `native`, a dual-run target or `off`;
- `http_front`, `grpc_front`: the per-request fronts behind the listeners (route, guard, log);
- `guard` (the write whitelist), `jwt` (file-id tokens), `peers` (which peers and remote
  endpoints may be dialled), `replies` (responses the front writes itself, shaped like Go's);
- `lifecycle`: bind the ports, listen, serve HTTP and gRPC, stop on SIGINT/SIGTERM in order;
- `tail`: the client half of VolumeTailSender that both VolumeTailReceivers use.

Modules below this layer (weedpy.http1, weedpy.grpc, proto, native.storage) know nothing of it;
modules above it never import each other (docs/architecture.md).
"""
