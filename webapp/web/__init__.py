"""What the feature blueprints share: navigation, optional services, view helpers (below every feature package)."""
