"""chainmatch: chains package."""
