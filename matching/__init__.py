"""chainmatch: matching package."""
