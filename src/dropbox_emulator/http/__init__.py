"""Transport: TLS, HTTP/1.1, auth and scopes, strict argument decoding, bodies, downloads, and
the exact wire format of Dropbox's answers. Route semantics are the handlers' business."""
