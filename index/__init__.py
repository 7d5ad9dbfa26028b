"""Articles → chunks → vectors → a persisted, versioned index."""
