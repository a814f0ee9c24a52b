"""Helpers shared by the `chainmatch bench …` smoke tests: run a benchmark command and read its JSON figures."""

from __future__ import annotations

import json

from click.testing import CliRunner

from webapp.cli.bench import bench_group

MACHINE_KEYS = {"cores", "memory_gb", "load_average_1m"}


def run_bench(args: list[str]) -> dict:
    result = CliRunner().invoke(bench_group, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])
