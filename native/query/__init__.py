"""The volume server's Query rpc core (Go's weed/query/json over tidwall/gjson), sans-IO:
JSON lines in, the selected fields of the lines that pass the filter out."""

from native.query._gjson import Kind, Result, for_each_line, get, wildcard_match
from native.query._json_query import Filter, query_json, select_records

__all__ = ["Kind", "Result", "for_each_line", "get", "wildcard_match", "Filter", "query_json", "select_records"]
