"""The import graph, read from the source with ``ast`` (imports inside functions count too).

localhub (the offline Hub) must stay light: standard library + yaml + its own modules (and any
lmolt_hub module listed in ``LOCALHUB_MAY_IMPORT``, which must itself be stdlib-only). It never
pulls in the ML side (torch, transformers, jinja2 through ``lmolt_hub.cards``, ...), and its
modules import each other without cycles.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
LOCALHUB = SRC / "lmolt_hub" / "localhub"
# lmolt_hub modules outside localhub that localhub may import: each must be stdlib(+yaml)-only itself.
LOCALHUB_MAY_IMPORT: set[str] = set()
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
    heavy = [m for m in loaded if m.split(".")[0] in ML_SIDE or m.startswith("lmolt_hub.cards")]
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
