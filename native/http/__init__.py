"""The native HTTP data path: reads, writes and deletes served as Go's volume server serves them.

Entry point: `NativeHttp(ctx, weed_binary).handle(exch)` (app.py) serves any request of the admin
or public port like Go's muxes (clean-path redirect, static, /status, /healthz, /ui, then the
store handlers). Modules, one job each:

- request side: `_request` (Go's *http.Request view), `_gourl` (ParseRequestURI, ParseQuery,
  escaping), `native.fileid` (parseURLPath, ParsePath), `weedpy.serve.jwt` (token precedence and
  verification), `_throttle` (in-flight byte limits);
- handlers: `_read` (GetOrHeadHandler), `_fast` (the plain small GET shortcut), `_write`
  (PostHandler), `_delete` (DeleteHandler), `_status` (/status, /healthz), `_ui` (/ui/index.html),
  `_static` (Go's embedded static files), `_proxy` and `_upstream` (reads of volumes elsewhere),
  `_replicate` (fan-out), `_manifest` (chunk manifests);
- Go behaviour ports, sans-IO: `_content` (writeResponseContent, ranges), `_range`,
  `_upload` (ParseForm + ParseUpload), `_multipart` (mime/multipart), `_mediatype`, `_mime`
  (TypeByExtension incl. weed's own registrations), `_sniff` (DetectContentType), `_gojson`
  (encoding/json as Go 1.27 writes it), `native.gostrconv`, `_gzip` + `_goflate` (Go 1.27's
  BestSpeed gzip, byte-identical), `_images` (crop/resize/orientation with Pillow), `_common`.
"""
