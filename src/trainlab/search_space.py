"""Search spaces: the hyperparameters of an algorithm, their ranges and defaults, checked at
the door (``validate``) and mapped from the unit cube for quasirandom tuning (``from_unit``)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainlab.errors import HyperparameterError, OutOfRangeWarning


@dataclass(frozen=True)
class Param:
    """One tunable hyperparameter.

    ``kind`` is ``"float"``, ``"int"`` or ``"choice"``. Floats and ints have an inclusive
    range ``[low, high]``, searched on a log scale when ``log`` is true. Choices list their
    allowed values. ``default`` is what the algorithm uses when nothing is set.
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    log: bool = False
    kind: str = "float"
    choices: tuple[Any, ...] = ()
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("float", "int", "choice"):
            raise ValueError(f"param {self.name}: unknown kind {self.kind!r}")
        if self.kind == "choice":
            if not self.choices:
                raise ValueError(f"param {self.name}: a choice needs choices")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(f"param {self.name}: needs low <= high")
        elif self.log and self.low <= 0:
            raise ValueError(f"param {self.name}: a log scale needs low > 0")

    def coerce(self, value: Any, allow_out_of_range: bool = False) -> Any:
        """Parse and check one value (a string from the command line or a number).

        ``allow_out_of_range`` accepts a finite number outside ``[low, high]`` with a
        :class:`OutOfRangeWarning` (a single exploratory run may leave the tuning space; a
        benchmark may not)."""
        if self.kind == "choice":
            for c in self.choices:
                if value == c or str(value) == str(c):
                    return c
            raise HyperparameterError(
                f"hyperparameter {self.name}={value!r} is not one of {list(self.choices)}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise HyperparameterError(
                f"hyperparameter {self.name}={value!r} is not a number"
            ) from None
        if not math.isfinite(number):
            raise HyperparameterError(f"hyperparameter {self.name}={value!r} is not finite")
        if self.kind == "int":
            if number != int(number):
                raise HyperparameterError(f"hyperparameter {self.name}={value!r} is not an integer")
            number = int(number)
        if not (self.low <= number <= self.high):  # type: ignore[operator]
            message = (
                f"hyperparameter {self.name}={value!r} is out of range "
                f"[{self.low:g}, {self.high:g}]"
            )
            if not allow_out_of_range:
                raise HyperparameterError(message)
            warnings.warn(f"{message} (outside the tuning search space)", OutOfRangeWarning,
                          stacklevel=2)  # fmt: skip
        return number

    def from_unit(self, u: float) -> Any:
        """Map ``u`` in [0, 1) to a value of this parameter (for quasirandom search)."""
        if self.kind == "choice":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if self.log:
            value = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
        else:
            value = lo + u * (hi - lo)
        if self.kind == "int":
            return int(min(max(round(value), lo), hi))
        return value

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "default": self.default}
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, log=self.log)
        if self.help:
            out["help"] = self.help
        return out


@dataclass(frozen=True)
class SearchSpace:
    """A workload-agnostic set of hyperparameters with ranges and defaults.

    An empty space marks a self-tuning algorithm.
    """

    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate hyperparameter names in {names}")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __len__(self) -> int:
        return len(self.params)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(
        self, hp: Mapping[str, Any] | None = None, allow_out_of_range: bool = False
    ) -> dict[str, Any]:
        """Defaults overridden by ``hp``; every name must exist and every value be in range
        (or, with ``allow_out_of_range``, finite: see :meth:`Param.coerce`)."""
        hp = dict(hp or {})
        known = {p.name: p for p in self.params}
        for name in hp:
            if name not in known:
                allowed = ", ".join(sorted(known)) or "none (self-tuning algorithm)"
                raise HyperparameterError(f"unknown hyperparameter {name!r}; allowed: {allowed}")
        return {
            p.name: p.coerce(hp[p.name], allow_out_of_range) if p.name in hp else p.default
            for p in self.params
        }

    def from_unit(self, point: list[float] | tuple[float, ...]) -> dict[str, Any]:
        """One hyperparameter dict from a point of the unit cube (one coordinate per param)."""
        if len(point) != len(self.params):
            raise ValueError(f"point has {len(point)} coordinates, space has {len(self.params)}")
        return {p.name: p.from_unit(float(u)) for p, u in zip(self.params, point, strict=True)}

    def merged(self, other: SearchSpace) -> SearchSpace:
        """The union of two spaces (names must not clash)."""
        return SearchSpace(self.params + other.params)

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.params]
