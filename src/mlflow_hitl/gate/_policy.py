"""A gate policy per registered model: what a model version must show before it takes a protected alias or stage.

The policy is TOML (``docs/gates/policy.md`` documents every key). Two rules keep it safe to edit:

- **Leave a key out and it keeps the strict default; write it and it replaces the default whole** (a
  list or table is not merged). An empty file is :func:`default_policy`. To switch something off,
  write it empty (``stages = []``, ``signoffs = []``, ``max = {}``).
- **Every mistake is refused at parse time with its line**: ``policy.toml line 12: unknown key
  'max_eec' in [checks.calibration]; known: allow_status, max, min``. A policy that could never be met
  (a sign-off role the review store never records, a status that never passes) is a mistake too.

Line numbers: ``tomllib`` reports them for syntax errors but returns plain dicts, so for schema errors
:class:`_KeyLines` scans the (already valid) text once and maps every table header and key to the line
that defines it. It tracks strings, comments and brackets, so a ``[`` or ``=`` inside a string or a
multi-line array never looks like a header or a key; keys of an inline table (one line in TOML 1.0)
and elements of an array are reported at the line of the key that holds them.
"""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from .._hashing import canonical_json, sha256_hex
from .._result import frozen_mapping
from .._roles import signoff_role
from ..checks.registry import ALL_CHECKS, CHECK_NAMES, CHECKS, SIGNOFF_CHECKS, BaseCheckSpec
from ..errors import ConfigError

__all__ = [
    "CHECK_NAMES",
    "CheckRule",
    "Policy",
    "PolicyError",
    "SignoffRule",
    "canonical_json",
    "default_policy",
    "parse_policy",
    "policy_hash",
    "policy_to_toml",
]

# CHECK_NAMES: the checks `validate` runs, from their registry (light: the registry plugin imports this
# module on every promotion, and the checks load their heavy libraries only when they run).
# MLflow's stages, canonical spelling by lower case (mlflow.entities.model_registry.model_version_stages).
_STAGES = {s.lower(): s for s in ("None", "Staging", "Production", "Archived")}
_ALIAS = re.compile(r"[\w-]+")  # MLflow's rule for alias names
_ACCEPTABLE = ("passed", "needs_review", "failed")


class PolicyError(ConfigError):
    """A gate policy is not valid TOML or does not fit the schema.

    The message starts with the source and line (``policy.toml line 12: ...``); ``source`` and ``line``
    are kept as attributes (``line`` is ``None`` when the text has no such line, e.g. for a policy
    checked without its text).
    """

    def __init__(self, message: str, *, source: str, line: int | None) -> None:
        self.source = source
        self.line = line
        super().__init__(f"{source} line {line}: {message}" if line else f"{source}: {message}")


_DECISIVE_STATUSES = ("failed", "needs_review", "passed")


@dataclass(frozen=True)
class CheckRule:
    """One required check: it must be logged, with a status in ``allow_status``, and meet every bound.

    ``max`` and ``min`` map a metric-name pattern *within the check* (``ece``, ``*.bias_amplification``;
    ``*`` and ``?`` as in :func:`fnmatch.fnmatchcase`) to its limit. A pattern that matches no logged
    metric is unmet, never a vacuous pass.
    """

    name: str
    max: Mapping[str, float] = field(default_factory=dict)
    min: Mapping[str, float] = field(default_factory=dict)
    allow_status: tuple[str, ...] = ("passed",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max", frozen_mapping({k: float(v) for k, v in sorted(self.max.items())}))
        object.__setattr__(self, "min", frozen_mapping({k: float(v) for k, v in sorted(self.min.items())}))
        object.__setattr__(self, "allow_status", tuple(sorted(set(self.allow_status))))


@dataclass(frozen=True)
class SignoffRule:
    """``count`` distinct people holding ``role`` must approve ``check`` (a check name or ``release``)."""

    check: str
    role: str
    count: int = 1


@dataclass(frozen=True)
class Policy:
    """A parsed, validated gate policy; immutable, compared and hashed by content.

    Build one with :func:`parse_policy` or :func:`default_policy` (they validate); the constructor only
    normalises (sorts names, freezes tables), so order in the file never changes equality or
    :func:`policy_hash`. ``dataclasses.replace`` works for tweaks in code; run the result through
    ``parse_policy(policy_to_toml(p))`` to have it validated.
    """

    protect_aliases: tuple[str, ...]
    protect_stages: tuple[str, ...]
    require_same_version_run: bool
    checks: Mapping[str, CheckRule]
    signoffs: tuple[SignoffRule, ...]
    min_verified_items: int
    min_krippendorff_alpha: float | None
    separate_duties: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "protect_aliases", tuple(sorted(self.protect_aliases)))
        object.__setattr__(self, "protect_stages", tuple(sorted(self.protect_stages)))
        object.__setattr__(self, "checks", frozen_mapping({k: self.checks[k] for k in sorted(self.checks)}))
        object.__setattr__(self, "signoffs", tuple(sorted(self.signoffs, key=lambda s: s.check)))

    def to_dict(self) -> dict[str, Any]:
        """The policy as plain data shaped like the TOML file (the form :func:`policy_hash` hashes)."""
        return {
            "protect": {"aliases": list(self.protect_aliases), "stages": list(self.protect_stages)},
            "evidence": {"require_same_version_run": self.require_same_version_run},
            "checks": {
                name: {"max": dict(rule.max), "min": dict(rule.min), "allow_status": list(rule.allow_status)}
                for name, rule in self.checks.items()
            },
            "signoffs": [{"check": s.check, "role": s.role, "count": s.count} for s in self.signoffs],
            "review": {
                "min_verified_items": self.min_verified_items,
                "min_krippendorff_alpha": self.min_krippendorff_alpha,
            },
            "duties": {"separate": self.separate_duties},
        }

    def __repr__(self) -> str:
        protected = [f"alias:{a}" for a in self.protect_aliases] + [f"stage:{s}" for s in self.protect_stages]
        return (
            f"Policy(protect={protected}, checks={list(self.checks)}, "
            f"signoffs={[s.check for s in self.signoffs]}, hash={policy_hash(self)[:12]!r})"
        )


def policy_hash(policy: Policy) -> str:
    """sha256 of the policy's canonical JSON: equal policies hash equal, whatever their file looked like."""
    return sha256_hex(canonical_json(policy.to_dict()))


def _default_rule(spec: BaseCheckSpec) -> CheckRule:
    """The rule a policy holds ``spec``'s check to when it names the check without bounds."""
    return CheckRule(
        spec.name,
        # each bound is the default of the setting the check declares for it (CheckSpec.gate_max/min)
        max={pattern: getattr(spec.settings(), setting) for pattern, setting in spec.gate_max.items()},
        min={pattern: getattr(spec.settings(), setting) for pattern, setting in spec.gate_min.items()},
        allow_status=spec.gate_allow_status,
    )


def default_policy() -> Policy:
    """The strict policy used when a registered model has none (``examples/policy.toml`` is this, commented).

    - Protects aliases ``champion`` and ``production`` and stages ``Production`` and ``Staging``.
    - Evidence must come from the model version's own run, with every artifact intact.
    - All five checks are required with status ``passed`` (fairness also ``needs_review``, because the
      required fairness sign-off is exactly the human review that status asks for), and bounded by the
      checks' own default thresholds, so an author who loosened ``config`` at validation time still
      cannot pass the gate.
      The checks people's answers compute (``generator_audit``, see ``REVIEW_CHECKS``) are not
      required: not every model has such a queue. A policy that names one (``[checks.generator_audit]``)
      holds it to the bounds given, else to the check's own defaults.
    - One ``fairness-reviewer`` who is not the model's author approves fairness.
    - No review queue is required (``min_verified_items = 0``): verified labels need a queue that not
      every model has, and a default nobody can meet gets switched off; the human check in the default
      is the fairness sign-off. Teams that review labels raise it.
    - Separation of duties: the run's author may neither sign off nor promote; the audit chain must verify.
    """
    checks = [_default_rule(spec) for spec in CHECKS.values()]
    return Policy(
        protect_aliases=("champion", "production"),
        protect_stages=("Production", "Staging"),
        require_same_version_run=True,
        checks={rule.name: rule for rule in checks},
        signoffs=(SignoffRule("fairness", signoff_role("fairness"), 1),),
        min_verified_items=0,
        min_krippendorff_alpha=None,
        separate_duties=True,
    )


# -- where each key is defined ----------------------------------------------------------------------

Path = tuple[str | int, ...]
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY_PART}(?:[ \t]*\.[ \t]*{_KEY_PART})*"
_HEADER = re.compile(rf"[ \t]*(\[\[?)[ \t]*({_DOTTED})[ \t]*\]")
_ASSIGN = re.compile(rf"[ \t]*({_DOTTED})[ \t]*=")


def _split_key(dotted: str) -> tuple[str, ...]:
    """``a."b.c".d`` -> ``("a", "b.c", "d")``, unquoted exactly as TOML does it (by TOML itself)."""
    parts: list[str] = []
    node: Any = tomllib.loads(f"{dotted} = 0")
    while isinstance(node, dict):
        (key,) = node
        parts.append(key)
        node = node[key]
    return tuple(parts)


def _statements(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line that starts outside any string, array or inline table."""
    depth, quote, line, i, at_start = 0, "", 1, 0, True
    while i < len(text):
        if at_start and not quote and depth == 0:
            end = text.find("\n", i)
            yield line, text[i : len(text) if end < 0 else end]
        at_start = False
        ch = text[i]
        if quote:
            if ch == "\\" and quote[0] == '"':  # an escape, possibly a line-ending backslash
                line += text[i + 1 : i + 2] == "\n"
                i += 2
                continue
            if text.startswith(quote, i):
                i += len(quote)
                while len(quote) == 3 and text[i : i + 1] == quote[0] and text.startswith(quote, i - 2):
                    i += 1  # up to two quotes may end a multi-line string: """a""""
                quote = ""
                continue
        elif ch == "#":
            i = text.find("\n", i)
            if i < 0:
                break
            continue
        elif text.startswith(('"""', "'''"), i):
            quote = text[i : i + 3]
            i += 3
            continue
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "\n":
            line += 1
            at_start = True
        i += 1


class _KeyLines:
    """Line of every table header and key in valid TOML text, by path (array-of-tables entries by index)."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Path, int] = {}
        arrays: dict[Path, int] = {}  # array-of-tables path -> entries seen so far

        def resolve(parts: tuple[str, ...]) -> Path:
            path: Path = ()
            for part in parts:
                path += (part,)
                if path in arrays:
                    path += (arrays[path] - 1,)
            return path

        def record(path: Path, line: int) -> None:
            for n in range(1, len(path)):
                self._lines.setdefault(path[:n], line)
            self._lines[path] = line

        table: Path = ()
        for line, statement in _statements(text):
            if header := _HEADER.match(statement):
                parts = _split_key(header[2])
                if header[1] == "[[":
                    table = resolve(parts[:-1]) + (parts[-1],)
                    arrays[table] = arrays.get(table, 0) + 1
                    table += (arrays[table] - 1,)
                else:
                    table = resolve(parts)
                record(table, line)
            elif assign := _ASSIGN.match(statement):
                record(table + _split_key(assign[1]), line)

    def line(self, path: Path) -> int | None:
        """The line defining ``path``, else its nearest enclosing key or table that has one."""
        for n in range(len(path), 0, -1):
            if path[:n] in self._lines:
                return self._lines[path[:n]]
        return None


# -- reading ------------------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__  # dates and times


def _where(path: Path) -> str:
    if not path:
        return "the top level"
    if path[0] == "signoffs" and len(path) > 1:
        return f"[[signoffs]] entry {path[1] + 1}"  # type: ignore[operator]
    return (
        "["
        + ".".join(json.dumps(p) if not re.fullmatch(r"[A-Za-z0-9_-]+", str(p)) else str(p) for p in path)
        + "]"
    )


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


class _Reader:
    """Walks the parsed TOML, validating each key and raising PolicyError at its line."""

    def __init__(self, source: str, text: str) -> None:
        self.source = source
        self.text = text
        self.defaults = default_policy()
        self.default = self.defaults.to_dict()

    @functools.cached_property
    def lines(self) -> _KeyLines:
        """Where each key is written: built for the first error only (it re-reads the text key by key,
        most of a parse's time, and a valid policy, read on every gate decision, never needs it)."""
        return _KeyLines(self.text)

    def fail(self, path: Path, message: str) -> PolicyError:
        return PolicyError(message, source=self.source, line=self.lines.line(path))

    def table(self, value: Any, path: Path, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{_dotted(path)} must be a table, got {_kind(value)}")
        for key in value:
            if key not in known:
                raise self.fail(
                    path + (key,), f"unknown key {key!r} in {_where(path)}; known: {', '.join(sorted(known))}"
                )
        return value

    def boolean(self, value: Any, path: Path) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"{_dotted(path)} must be true or false, got {_kind(value)}")
        return value

    def number(self, value: Any, path: Path, *, low: float | None = None, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"{_dotted(path)} must be a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise self.fail(path, f"{_dotted(path)} must be finite, got {value}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise self.fail(path, f"{_dotted(path)} must be between {low} and {high}, got {value}")
        return float(value)

    def integer(self, value: Any, path: Path, *, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"{_dotted(path)} must be a whole number, got {_kind(value)} {value!r}")
        if value < low:
            raise self.fail(path, f"{_dotted(path)} must be at least {low}, got {value}")
        return value

    def strings(self, value: Any, path: Path) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, f"{_dotted(path)} must be a list of strings, got {_kind(value)}")
        seen = set()
        for item in value:
            if item in seen:
                raise self.fail(path, f"{_dotted(path)} lists {item!r} twice")
            seen.add(item)
        return value

    def policy(self, data: dict[str, Any]) -> Policy:
        known = ("protect", "evidence", "checks", "signoffs", "review", "duties")
        self.table(data, (), known)
        d = self.default
        protect = self.table(data.get("protect", {}), ("protect",), ("aliases", "stages"))
        evidence = self.table(data.get("evidence", {}), ("evidence",), ("require_same_version_run",))
        review = self.table(
            data.get("review", {}), ("review",), ("min_verified_items", "min_krippendorff_alpha")
        )
        duties = self.table(data.get("duties", {}), ("duties",), ("separate",))
        alpha = review.get("min_krippendorff_alpha", d["review"]["min_krippendorff_alpha"])
        return Policy(
            protect_aliases=self.aliases(protect.get("aliases", d["protect"]["aliases"])),
            protect_stages=self.stages(protect.get("stages", d["protect"]["stages"])),
            require_same_version_run=self.boolean(
                evidence.get("require_same_version_run", d["evidence"]["require_same_version_run"]),
                ("evidence", "require_same_version_run"),
            ),
            checks=self.checks(data["checks"]) if "checks" in data else self.defaults.checks,
            signoffs=self.signoffs(data.get("signoffs", d["signoffs"])),
            min_verified_items=self.integer(
                review.get("min_verified_items", d["review"]["min_verified_items"]),
                ("review", "min_verified_items"),
                low=0,
            ),
            min_krippendorff_alpha=None
            if alpha is None
            else self.number(alpha, ("review", "min_krippendorff_alpha"), low=-1.0, high=1.0),
            separate_duties=self.boolean(
                duties.get("separate", d["duties"]["separate"]), ("duties", "separate")
            ),
        )

    def aliases(self, value: Any) -> tuple[str, ...]:
        path = ("protect", "aliases")
        for alias in self.strings(value, path):
            if not _ALIAS.fullmatch(alias):
                raise self.fail(
                    path, f"alias {alias!r} is not a valid MLflow alias (letters, digits, '_' and '-' only)"
                )
        if len({a.lower() for a in value}) < len(value):
            raise self.fail(path, "protect.aliases lists the same alias twice in different case")
        return tuple(value)

    def stages(self, value: Any) -> tuple[str, ...]:
        path = ("protect", "stages")
        for stage in self.strings(value, path):
            if stage.lower() not in _STAGES:
                raise self.fail(
                    path, f"{stage!r} is not an MLflow stage; stages: {', '.join(_STAGES.values())}"
                )
        canonical = [_STAGES[s.lower()] for s in value]
        if len(set(canonical)) < len(canonical):
            raise self.fail(path, "protect.stages lists the same stage twice (stage names ignore case)")
        return tuple(canonical)

    def checks(self, value: Any) -> dict[str, CheckRule]:
        self.table(value, ("checks",), tuple(ALL_CHECKS))
        return {
            name: self.check(
                name, value[name], self.defaults.checks.get(name) or _default_rule(ALL_CHECKS[name])
            )
            for name in value
        }

    def check(self, name: str, value: Any, default: CheckRule) -> CheckRule:
        path = ("checks", name)
        rule = self.table(value, path, ("allow_status", "max", "min"))
        bounds = {
            kind: self.bounds(name, rule[kind], path + (kind,))
            if kind in rule
            else dict(getattr(default, kind))
            for kind in ("max", "min")
        }
        for pattern in bounds["max"].keys() & bounds["min"].keys():
            if bounds["min"][pattern] > bounds["max"][pattern]:
                raise self.fail(
                    path + ("min", pattern),
                    f"checks.{name}: min {bounds['min'][pattern]} for {pattern!r} is above its max "
                    f"{bounds['max'][pattern]}; no value can meet both",
                )
        if "allow_status" in rule:
            allow = self.statuses(rule["allow_status"], path + ("allow_status",))
        elif rule.get("max") or rule.get("min"):
            # The policy's own thresholds decide, not the verdict logged under validation-time ones:
            # every status counts except insufficient_evidence, which never does.
            allow = _DECISIVE_STATUSES
        else:
            allow = default.allow_status
        return CheckRule(name, max=bounds["max"], min=bounds["min"], allow_status=tuple(allow))

    def bounds(self, check: str, value: Any, path: Path) -> dict[str, float]:
        if not isinstance(value, dict):
            raise self.fail(
                path, f"{_dotted(path)} must be a table of metric pattern = limit, got {_kind(value)}"
            )
        out = {}
        for pattern, limit in value.items():
            where = path + (pattern,)
            if not pattern:
                raise self.fail(where, f"{_dotted(path)} has an empty metric pattern")
            if isinstance(limit, dict):  # TOML reads an unquoted a.b as nested tables
                dotted = f"{pattern}.{next(iter(limit), '')}"
                raise self.fail(
                    where, f"quote metric patterns that contain dots: write {_toml_str(dotted)} = <limit>"
                )
            for prefix in ("hitl.", f"{check}."):
                if pattern.startswith(prefix):
                    fixed = pattern.removeprefix("hitl.").removeprefix(f"{check}.")
                    raise self.fail(
                        where,
                        f"metric pattern {pattern!r} in {_where(path)}: patterns name metrics within the "
                        f"check, without {prefix!r}; write {fixed!r}",
                    )
            out[pattern] = self.number(limit, where)
            valid = ALL_CHECKS[check].metric_range(pattern)
            if valid is not None and not valid[0] <= out[pattern] <= valid[1]:
                raise self.fail(
                    where,
                    f"{_dotted(where)} = {limit} is outside the values {pattern!r} can take "
                    f"({valid[0]:g} to {valid[1]:g}): a bound there never binds",
                )
        return out

    def statuses(self, value: Any, path: Path) -> list[str]:
        for status in self.strings(value, path):
            if status == "insufficient_evidence":
                raise self.fail(
                    path, "insufficient_evidence is never accepted: too little data is not a pass; remove it"
                )
            if status not in _ACCEPTABLE:
                raise self.fail(path, f"unknown status {status!r}; choose from {', '.join(_ACCEPTABLE)}")
        if not value:
            raise self.fail(path, f'{_dotted(path)} is empty; list the statuses that pass, e.g. ["passed"]')
        return value

    def signoffs(self, value: Any) -> tuple[SignoffRule, ...]:
        path: Path = ("signoffs",)
        if not isinstance(value, list):
            raise self.fail(
                path, f"signoffs must be [[signoffs]] tables (or signoffs = []), got {_kind(value)}"
            )
        rules: dict[str, SignoffRule] = {}
        for index, entry in enumerate(value):
            where = path + (index,)
            entry = self.table(entry, where, ("check", "count", "role"))
            if "check" not in entry:
                raise self.fail(where, f"{_where(where)} needs check = one of {', '.join(SIGNOFF_CHECKS)}")
            check = entry["check"]
            if check not in SIGNOFF_CHECKS:
                raise self.fail(
                    where + ("check",),
                    f"unknown sign-off check {check!r}; choose from {', '.join(SIGNOFF_CHECKS)}",
                )
            if check in rules:
                raise self.fail(
                    where + ("check",),
                    f"a sign-off of {check!r} is already required; raise its count instead",
                )
            role = entry.get("role", signoff_role(check))
            if role != signoff_role(check):
                raise self.fail(
                    where + ("role",),
                    f"role {role!r} can never sign off {check!r}: the review store records {check} sign-offs "
                    f"with role {signoff_role(check)!r}",
                )
            count = self.integer(entry.get("count", 1), where + ("count",), low=1)
            rules[check] = SignoffRule(check, role, count)
        return tuple(rules.values())


def _syntax_error(exc: Exception, text: str, source: str) -> PolicyError:
    """A TOML syntax error with its line moved to the front, as every other policy error has it."""
    message = str(exc)
    if found := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        line, message = int(found[1]), f"{message[: found.start()]} (column {found[2]})"
    elif found := re.search(r"\s*\(at end of document\)$", message):
        line, message = max(len(text.splitlines()), 1), f"{message[: found.start()]} (at end of document)"
    else:
        line = None
    return PolicyError(f"invalid TOML: {message}", source=source, line=line)


def parse_policy(text: str, *, source: str = "policy.toml") -> Policy:
    """Parse and validate a policy; :class:`PolicyError` names ``source``, the line and the fix.

    ``source`` only labels messages (pass the file's path); this function never reads files.
    """
    if not isinstance(text, str):
        raise PolicyError(f"policy text must be a str, got {type(text).__name__}", source=source, line=None)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, text, source) from exc
    return _Reader(source, text).policy(data)


# -- writing ------------------------------------------------------------------------------------------
# tomllib reads but does not write. This schema needs only strings, finite numbers, booleans, lists of
# strings and one-level inline tables, which is a dozen lines, not a dependency (tomli-w).


def _toml_str(value: str) -> str:
    # JSON's escapes (\" \\ \n \t \uXXXX ...) are all TOML escapes; DEL is the one control character
    # TOML needs escaped that JSON leaves alone.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_str(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if not value:
        return "{}"
    return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


def policy_to_toml(policy: Policy) -> str:
    """The policy as TOML that :func:`parse_policy` reads back equal (every key written, none left to defaults)."""
    data = policy.to_dict()
    out = [f"# mlflow-hitl gate policy (policy_hash {policy_hash(policy)})", ""]
    if not data["signoffs"]:
        out += ["signoffs = []", ""]  # must come before the first table header

    def section(header: str, values: Mapping[str, Any]) -> None:
        out.append(header)
        out.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in values.items() if v is not None)
        out.append("")

    section("[protect]", data["protect"])
    section("[evidence]", data["evidence"])
    if not data["checks"]:
        section("[checks]", {})
    for name, rule in data["checks"].items():
        section(f"[checks.{name}]", rule)
    for signoff in data["signoffs"]:
        section("[[signoffs]]", signoff)
    section("[review]", data["review"])
    section("[duties]", data["duties"])
    return "\n".join(out)
