"""Chat rooms: pages, the WebSocket consumer and the message store."""
