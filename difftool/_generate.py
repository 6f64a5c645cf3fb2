"""Seeded scenario generators: a kind, a seed and a number of operations in, steps out (sans-IO).

A generator is a function `(seed, operations) -> tuple[Step, ...]` that returns the same steps
for the same arguments on every machine (it draws only from `random.Random(seed)`). A scenario
file names one in a `[generate]` table instead of listing steps:

    name = "grpc-random"
    description = "..."
    [generate]
    kind = "grpc"          # a key of GENERATORS
    seed = 1
    operations = 400

and `weedpy diff run grpc-random --seed 7 --operations 2000` overrides seed and size. The
runner executes generated steps like scripted ones; the report's `meta.generate` names kind,
seed and operations, which is all it takes to run the same steps again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from difftool._gen_grpc import grpc_random_steps
from difftool._step import Step

__all__ = ["GENERATORS", "GenerateSpec", "GenerateError", "parse_generate"]

Generator = Callable[[int, int], tuple[Step, ...]]

GENERATORS: Mapping[str, Generator] = {"grpc": grpc_random_steps}
MAX_OPERATIONS = 1_000_000


class GenerateError(ValueError):
    """A `[generate]` table that cannot run."""


@dataclasses.dataclass(frozen=True, slots=True)
class GenerateSpec:
    kind: str
    seed: int
    operations: int

    def steps(self) -> tuple[Step, ...]:
        return GENERATORS[self.kind](self.seed, self.operations)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "seed": self.seed, "operations": self.operations}


def parse_generate(raw: Mapping[str, Any]) -> GenerateSpec:
    unknown = set(raw) - {"kind", "seed", "operations"}
    if unknown:
        raise GenerateError(f"generate: unknown key(s) {', '.join(sorted(unknown))}")
    kind = str(raw.get("kind", ""))
    if kind not in GENERATORS:
        raise GenerateError(f"generate: kind must be one of {', '.join(sorted(GENERATORS))}, not {kind!r}")
    seed, operations = raw.get("seed", 1), raw.get("operations", 100)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise GenerateError(f"generate: seed must be a non-negative integer, not {seed!r}")
    if not isinstance(operations, int) or isinstance(operations, bool) or not 1 <= operations <= MAX_OPERATIONS:
        raise GenerateError(f"generate: operations must be an integer from 1 to {MAX_OPERATIONS}, not {operations!r}")
    return GenerateSpec(kind, seed, operations)
