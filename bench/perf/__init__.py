"""Performance benchmarks behind `chainmatch bench …` (no blueprint): synthetic pools, timings, machine facts.

Each benchmark returns a JSON-ready dict with its figures and the machine's facts; generated data goes to a
work folder outside the repository (default under the system temp folder).
"""
