"""The metric modules a run scores with: which ones (Hub Space at a commit, or a local script), and
loading them as module objects for the harness.

A module is named by a :class:`ModuleRef`: ``id`` (a Hub Space ``org/name``, or ``name`` for the
copy bundled with lmolt-hub, or a local path), ``revision`` (the Space's commit sha, or
``sha256:<hex>`` of a local script's bytes) and the ``metrics_version`` its script declares. The
results document records these (``metric_modules``); an eval set's ``metric_config.json`` pins them
(``modules``), so the reviewer scores with the pinned modules.

:func:`load_module` imports the script file itself (downloaded at the pinned commit with
``huggingface_hub``, so an offline run finds it in the Hub cache, and a pin is never served by a
newer cached copy, as ``evaluate.load``'s own cache fallback would). It does not import ``evaluate``:
the script's class then derives from ``hf_evaluate.PlainModule`` (see ``hf_evaluate``), and the
harness calls its ``score``/``add_to`` methods, the ones ``compute()`` calls.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from lmolt_hub.metrics.hf_evaluate import MODULE_NAMES, TABLE_MODULES, LmoltModule, check_metrics_version
from lmolt_hub.resources import METRIC_MODULES

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
CONTENT_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class ModuleError(ValueError):
    """A metric module that cannot be used (one line naming the module and the fix)."""


@dataclass(frozen=True)
class ModuleRef:
    """Which module scored: ``id``, ``revision``, ``metrics_version``; ``source``: hub, bundled or local."""

    name: str
    id: str
    revision: str
    metrics_version: str
    source: str
    path: str | None = None  # the script file (not recorded: a local cache path)

    def recorded(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if k not in ("name", "path")}


def content_hash(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def declared_version(path: Path) -> str:
    """The ``METRICS_VERSION = "..."`` a module script declares (read, not run)."""
    for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "METRICS_VERSION" for t in node.targets
        ):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    raise ModuleError(f'metric module script {path} declares no METRICS_VERSION = "..."')


def _check_name(name: str) -> None:
    if name not in MODULE_NAMES:
        raise ModuleError(f"unknown metric module {name!r}; the modules are {', '.join(MODULE_NAMES)}")


def _local(name: str, path: Path, source: str, shown: str) -> ModuleRef:
    script = path / f"{name}.py" if path.is_dir() else path
    if not script.is_file():
        raise ModuleError(f"metric module {name}: no script {script} (expected {name}.py in that folder)")
    return ModuleRef(name, shown, content_hash(script), declared_version(script), source, str(script))


def bundled(name: str) -> ModuleRef:
    """The module script shipped with this lmolt-hub (``eval_harness/metrics/<name>``)."""
    _check_name(name)
    return _local(name, METRIC_MODULES / name, "bundled", name)


def resolve(name: str, spec: str | None = None, revision: str | None = None) -> ModuleRef:
    """``spec``: None (bundled), a local folder or script, or a Hub Space id (``org/name``) at
    ``revision`` (default main; resolved to its commit sha)."""
    from lmolt_hub.hub.ref import is_hub_id, is_local

    _check_name(name)
    if spec is None:
        return bundled(name)
    if is_local(spec):
        return _local(name, Path(spec).expanduser(), "local", spec)
    if not is_hub_id(spec):
        raise ModuleError(
            f"metric module {name}: {spec!r} is neither a local path nor a Hub Space id (org/name)"
        )
    return _hub(name, spec, revision)


def _hub(name: str, space: str, revision: str | None) -> ModuleRef:
    from huggingface_hub import hf_hub_download

    from lmolt_hub.hub.ref import repo_info

    if space.split("/")[1] != name:
        raise ModuleError(
            f"metric module {name}: the Space {space} is not named {name} (evaluate loads <org>/{name})"
        )
    if revision and SHA_RE.match(revision):
        sha = revision  # pinned: no Hub request, so a cached pin works offline
    else:
        sha = repo_info(space, revision, repo_type="space", what="metric module", error=ModuleError).sha
    try:
        path = Path(hf_hub_download(space, f"{name}.py", repo_type="space", revision=sha))
    except Exception as exc:  # noqa: BLE001 - missing file, unknown sha, no Hub: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModuleError(f"metric module {space}@{sha[:12]}: cannot get {name}.py ({first})") from None
    return ModuleRef(name, space, sha, declared_version(path), "hub", str(path))


_LOADED: dict[tuple[str, str], LmoltModule] = {}


def load_module(ref: ModuleRef) -> LmoltModule:
    """The module object of ``ref``'s script (imported once per script content)."""
    key = (ref.name, content_hash(Path(ref.path)))
    if key not in _LOADED:
        check_metrics_version(f"{ref.id}@{ref.revision[:19]}", ref.metrics_version)
        mod_name = f"lmolt_metric_module_{ref.name}_{key[1][7:19]}"
        spec = importlib.util.spec_from_file_location(mod_name, ref.path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        classes = [
            c for c in vars(module).values()
            if isinstance(c, type) and issubclass(c, LmoltModule) and c is not LmoltModule
        ]  # fmt: skip
        if len(classes) != 1 or classes[0].name != ref.name:
            raise ModuleError(f"metric module {ref.id}: its script defines no {ref.name} module class")
        _LOADED[key] = classes[0]()
    return _LOADED[key]


@dataclass
class RunModules:
    """The modules of one run: a table module per direction and the hallucination module."""

    refs: dict[str, ModuleRef]

    def table(self, direction: str) -> LmoltModule:
        name = next(n for n, d in TABLE_MODULES.items() if d == direction)
        return load_module(self.refs[name])

    def hallucination(self) -> LmoltModule:
        return load_module(self.refs["lmolt_hallucination"])

    def recorded(self, directions: list[str], hallucination: bool) -> dict[str, dict[str, str]]:
        """What the results record: the modules that scored these directions."""
        names = [n for n, d in TABLE_MODULES.items() if d in directions]
        names += ["lmolt_hallucination"] if hallucination else []
        return {n: self.refs[n].recorded() for n in names}


def run_modules(
    pins: dict[str, dict[str, str]] | None = None, overrides: dict[str, str] | None = None
) -> RunModules:
    """``pins`` (an eval set's ``modules``: name -> {id, revision}) else the bundled modules;
    ``overrides`` (name -> local path or ``org/name[@revision]``) win over both."""
    refs = {}
    for name in MODULE_NAMES:
        if overrides and name in overrides:
            spec, _, rev = overrides[name].partition("@")
            refs[name] = resolve(name, spec, rev or None)
        elif pins and name in pins:
            refs[name] = resolve(name, pins[name]["id"], pins[name]["revision"])
        else:
            refs[name] = bundled(name)
    unknown = sorted(set(overrides or {}) - set(MODULE_NAMES))
    if unknown:
        raise ModuleError(f"unknown metric module(s) {unknown}; the modules are {', '.join(MODULE_NAMES)}")
    for ref in refs.values():  # before any work: a module for other metric definitions is refused now
        check_metrics_version(f"{ref.id}@{ref.revision[:19]}", ref.metrics_version)
    return RunModules(refs)


def pin_modules(specs: dict[str, str]) -> dict[str, dict[str, str]]:
    """name -> ``org/name[@revision]`` as the data stage writes them into ``metric_config.json``:
    name -> {id, revision}, each revision resolved to its commit sha (Hub Spaces only)."""
    pins = {}
    for name, text in specs.items():
        spec, _, rev = str(text).partition("@")
        ref = resolve(name, spec, rev or None)
        if ref.source != "hub":
            raise ModuleError(f"metric module {name}: an eval set pins Hub Spaces (org/{name}), not {spec!r}")
        pins[name] = {"id": ref.id, "revision": ref.revision}
    return pins


__all__ = [
    "ModuleError",
    "ModuleRef",
    "RunModules",
    "bundled",
    "load_module",
    "pin_modules",
    "resolve",
    "run_modules",
]
