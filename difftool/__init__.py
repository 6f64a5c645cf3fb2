"""The dual-run differ: the same request to Go and to native, compared with noise filtered out."""
