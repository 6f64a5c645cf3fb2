"""The native HTTP data path: reads, writes and deletes served as Go's volume server serves them."""
