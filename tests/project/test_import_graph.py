"""The import graph, read from the source with ``ast`` (imports inside functions count too).

The whole package: no import cycles, no imports between sibling stages (data, training, merging,
evaluation, leaderboard, localhub), and shared layers import no stage; what still breaks these rules
is allow-listed below with who removes it.

localhub (the offline Hub) must stay light: standard library + yaml + its own modules (and any
lmolt_hub module listed in ``LOCALHUB_MAY_IMPORT``, which must itself be stdlib-only). It never
pulls in the ML side (torch, transformers, jinja2 through ``lmolt_hub.hub.render``, ...), and its
modules import each other without cycles.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
LOCALHUB = SRC / "lmolt_hub" / "localhub"
# lmolt_hub modules outside localhub that localhub may import: each must be stdlib(+yaml)-only itself.
LOCALHUB_MAY_IMPORT: set[str] = {"lmolt_hub.io"}
THIRD_PARTY_OK = {"yaml"}
ML_SIDE = ("torch", "transformers", "jinja2", "numpy", "datasets", "peft", "trl", "huggingface_hub")


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, src: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, at any depth of the file (functions too).

    ``from pkg import name`` counts as ``pkg.name`` when that is a module under ``src``, else ``pkg``.
    """
    me = module_name(path, src)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = me.split(".") if is_pkg else me.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join([*pkg, base] if base else pkg)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if _is_module(sub, src) else base)
    return out


def _is_module(name: str, src: Path) -> bool:
    p = src.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def package_graph(pkg_dir: Path, src: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (explicit edges only: importing a
    submodule also runs its parent ``__init__``, which no tool counts as an edge)."""
    prefix = module_name(pkg_dir / "__init__.py", src)
    mods = {module_name(p, src): p for p in sorted(pkg_dir.rglob("*.py"))}
    return {
        m: {i for i in imports_of(p, src) if i in mods and i != m and i.startswith(prefix)}
        for m, p in mods.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (cycle := visit(n)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def disallowed_imports(pkg_dir: Path, src: Path, may_import: set[str]) -> list[str]:
    """``module: import`` for every import that is not stdlib, yaml, the package itself, or allowed."""
    prefix = module_name(pkg_dir / "__init__.py", src)

    def ok(name: str) -> bool:
        top = name.split(".")[0]
        return (
            top in sys.stdlib_module_names
            or top in THIRD_PARTY_OK
            or name == prefix
            or name.startswith(prefix + ".")
            or name in may_import
        )

    bad = []
    files = sorted(pkg_dir.rglob("*.py")) + [
        src.joinpath(*m.split(".")).with_suffix(".py") for m in may_import
    ]
    for path in files:
        bad += [f"{module_name(path, src)}: {i}" for i in sorted(imports_of(path, src)) if not ok(i)]
    return bad


# ---------------------------------------------------------------- the checks on localhub


def test_localhub_imports_only_stdlib_yaml_and_itself():
    assert len(list(LOCALHUB.rglob("*.py"))) >= 10  # the walk sees the package (and routes/)
    assert disallowed_imports(LOCALHUB, SRC, LOCALHUB_MAY_IMPORT) == []


def test_localhub_has_no_import_cycles():
    graph = package_graph(LOCALHUB, SRC)
    assert "lmolt_hub.localhub.routes.files" in graph and graph["lmolt_hub.localhub.handler"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_localhub_at_run_time_loads_nothing_from_the_ml_side(tmp_path):
    """Import localhub and serve a commit and a download in a fresh interpreter: no ML module loads."""
    code = textwrap.dedent(
        f"""
        import json, sys, urllib.request
        from lmolt_hub.localhub import start_in_thread
        import lmolt_hub.localhub.cli
        hub = start_in_thread({str(tmp_path / "hub")!r}, tokens=["hf_graph_token"])
        def call(method, path, body=None, ctype="application/json"):
            req = urllib.request.Request(hub.url + path, data=body, method=method, headers={{
                "Authorization": "Bearer hf_graph_token", "Content-Type": ctype}})
            with urllib.request.urlopen(req) as r:
                return r.read()
        call("POST", "/api/repos/create", json.dumps({{"name": "m"}}).encode())
        lines = [{{"key": "header", "value": {{"summary": "add"}}}},
                 {{"key": "file", "value": {{"path": "README.md", "content": "LS0tCnRhZ3M6IFt4XQotLS0K"}}}}]
        call("POST", "/api/models/lmolt-user/m/commit/main",
             "\\n".join(json.dumps(x) for x in lines).encode(), "application/x-ndjson")
        assert call("GET", "/lmolt-user/m/resolve/main/README.md").startswith(b"---")
        assert json.loads(call("GET", "/api/models/lmolt-user/m"))["cardData"] == {{"tags": ["x"]}}
        call("GET", "/")
        hub.stop()
        print(json.dumps(sorted(m for m in sys.modules)))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    heavy = [m for m in loaded if m.split(".")[0] in ML_SIDE or m.startswith("lmolt_hub.hub.render")]
    assert heavy == []
    assert "yaml" in loaded and "lmolt_hub.localhub.routes.files" in loaded  # the walk ran for real


# ---------------------------------------------------------------- the checker itself can fail


def test_checker_finds_a_planted_cycle_and_a_forbidden_import(tmp_path):
    pkg = tmp_path / "demo" / "hub"
    (pkg / "sub").mkdir(parents=True)
    (tmp_path / "demo" / "__init__.py").write_text("")
    (tmp_path / "demo" / "heavy.py").write_text("import torch\n")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import json\nfrom demo.hub import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")  # hidden inside a function
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import yaml\nfrom ..a import x\n")
    graph = package_graph(pkg, tmp_path)
    assert graph["demo.hub.b"] == {"demo.hub.sub.c"} and graph["demo.hub.sub.c"] == {"demo.hub.a"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"demo.hub.a", "demo.hub.b", "demo.hub.sub.c"}
    assert disallowed_imports(pkg, tmp_path, set()) == []
    (pkg / "b.py").write_text("def f():\n    import transformers\n    from demo import heavy\n")
    assert disallowed_imports(pkg, tmp_path, set()) == ["demo.hub.b: demo.heavy", "demo.hub.b: transformers"]
    # an allowed outside module is checked too: it must be stdlib-only itself
    assert disallowed_imports(pkg, tmp_path, {"demo.heavy"}) == [
        "demo.hub.b: transformers",
        "demo.heavy: torch",
    ]
    assert find_cycle(package_graph(pkg, tmp_path)) is None


# ---------------------------------------------------------------- the whole package

PACKAGE = SRC / "lmolt_hub"
# The stages hand each other data through the Hub and the shared layers, never by importing each other.
STAGES = ("data", "training", "merging", "evaluation", "leaderboard", "localhub")
# Entry points that run several stages in order: the console command and the pipelines/ package (a name
# here covers its submodules). Every other module outside the stages is a shared layer (hub/, formats/,
# generation/, metrics/, prompts, tiny, io, ...): stages import it, it imports no stage.
ORCHESTRATORS = {
    "lmolt_hub.cli",
    "lmolt_hub.pipelines",
}
# Allow-lists of what still exists (issue 16), each entry naming the helper removing it. An entry that
# no longer applies fails the test (delete it then): the lists only shrink, the checks only get stricter.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}
KNOWN_SIDEWAYS: dict[tuple[str, str], str] = {}


def stage_of(module: str, stages: tuple[str, ...]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in stages else None


def sideways_imports(graph: dict[str, set[str]], stages: tuple[str, ...]) -> set[tuple[str, str]]:
    """(importer, imported) for every import from one stage into another."""
    return {
        (m, i)
        for m, deps in graph.items()
        for i in deps
        if stage_of(m, stages) and stage_of(i, stages) and stage_of(m, stages) != stage_of(i, stages)
    }


def upward_imports(
    graph: dict[str, set[str]], stages: tuple[str, ...], entry: set[str]
) -> set[tuple[str, str]]:
    """(importer, imported) for every import of a stage by a shared-layer module (not an entry point)."""
    return {
        (m, i)
        for m, deps in graph.items()
        for i in deps
        if stage_of(m, stages) is None and not is_entry(m, entry) and stage_of(i, stages)
    }


def is_entry(module: str, entry: set[str]) -> bool:
    """Whether ``module`` is an entry point or lies inside an entry-point package."""
    return any(module == e or module.startswith(e + ".") for e in entry)


def without(graph: dict[str, set[str]], edges) -> dict[str, set[str]]:
    return {m: {i for i in deps if (m, i) not in edges} for m, deps in graph.items()}


def closes_cycle(graph: dict[str, set[str]], a: str, b: str) -> bool:
    """Whether the edge a -> b exists and b reaches a (so the edge is part of a cycle)."""
    if b not in graph.get(a, ()):
        return False
    seen, todo = {b}, [b]
    while todo:
        for n in graph.get(todo.pop(), ()):
            if n == a:
                return True
            if n not in seen:
                seen.add(n)
                todo.append(n)
    return False


def test_package_has_no_import_cycles_beyond_the_known_ones():
    graph = package_graph(PACKAGE, SRC)
    assert len(graph) > 80 and "lmolt_hub.merging.run" in graph  # the walk sees the whole package
    cycle = find_cycle(without(graph, KNOWN_CYCLE_EDGES))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    stale = [f"{a} -> {b}" for a, b in KNOWN_CYCLE_EDGES if not closes_cycle(graph, a, b)]
    assert stale == [], "no longer part of a cycle: delete from KNOWN_CYCLE_EDGES"


def test_sibling_stages_do_not_import_each_other():
    found = sideways_imports(package_graph(PACKAGE, SRC), STAGES)
    new = sorted(f"{a} -> {b}" for a, b in found - KNOWN_SIDEWAYS.keys())
    assert new == [], "a stage imports a sibling stage: move what they share to a shared layer"
    stale = sorted(f"{a} -> {b}" for a, b in KNOWN_SIDEWAYS.keys() - found)
    assert stale == [], "no longer imported: delete from KNOWN_SIDEWAYS"


def test_shared_layers_import_no_stage():
    graph = package_graph(PACKAGE, SRC)
    assert {m for m in ORCHESTRATORS if m not in graph} == set()  # renamed entry points leave the list
    assert sorted(upward_imports(graph, STAGES, ORCHESTRATORS)) == []


def test_whole_package_checks_catch_planted_problems(tmp_path):
    root = tmp_path / "demo"
    for d in ("", "a", "b"):
        (root / d).mkdir(exist_ok=True)
        (root / d / "__init__.py").write_text("")
    (root / "a" / "x.py").write_text("def f():\n    from demo.b import y\n")  # sideways, inside a function
    (root / "b" / "y.py").write_text("from demo import shared\n")
    (root / "shared.py").write_text("def g():\n    from demo.a.x import f\n")  # upward, closes a cycle
    (root / "main.py").write_text("from demo.a import x\nfrom demo.b import y\n")  # an entry point
    graph = package_graph(root, tmp_path)
    stages = ("a", "b")
    assert sideways_imports(graph, stages) == {("demo.a.x", "demo.b.y")}
    assert upward_imports(graph, stages, {"demo.main"}) == {("demo.shared", "demo.a.x")}
    assert set(find_cycle(graph) or []) == {"demo.a.x", "demo.b.y", "demo.shared"}
    assert closes_cycle(graph, "demo.shared", "demo.a.x") and not closes_cycle(graph, "demo.main", "demo.a.x")
    assert find_cycle(without(graph, {("demo.shared", "demo.a.x")})) is None
    assert is_entry("demo.a.x", {"demo.a"}) and not is_entry("demo.ab", {"demo.a"})
