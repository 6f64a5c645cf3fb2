"""weedpy's storage engine (work in progress; the public API is assembled here)."""
