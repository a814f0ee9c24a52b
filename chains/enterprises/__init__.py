"""Enterprise registry: credit codes, field normalisation, table readers, import, export, synthetic data."""
