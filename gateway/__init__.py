"""The trio front-end: listens on the volume server's ports and routes each endpoint to Go or native."""
