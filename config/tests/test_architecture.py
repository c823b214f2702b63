"""The import graph has no cycles, and docs/architecture.md's import rules are the contracts.

Both read the code and files as they are, no database: `make check` runs
this module besides `lint-imports`, which checks the contracts themselves.
"""

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()

type Edge = tuple[str, str]


def is_test(module: str) -> bool:
    return ".tests." in f"{module}." or module == "conftest"


def import_graph() -> grimp.ImportGraph:
    # Function-level imports are imports: grimp finds them as lint-imports does.
    return grimp.build_graph(*PYPROJECT["root_packages"], cache_dir=None)


def cycles(graph: grimp.ImportGraph) -> Iterator[list[str]]:
    """Each group of non-test modules that import one another (Tarjan's strong components)."""
    modules = sorted(module for module in graph.modules if not is_test(module))
    imports = {
        module: sorted(
            imported
            for imported in graph.find_modules_directly_imported_by(module)
            if not is_test(imported)
        )
        for module in modules
    }
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in modules:
        if root in index:
            continue
        # Iterative, so that a long chain of imports cannot overflow Python's stack.
        work = [(root, iter(imports[root]))]
        index[root] = lowest[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, pending = work[-1]
            for imported in pending:
                if imported not in index:
                    index[imported] = lowest[imported] = len(index)
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, iter(imports.get(imported, []))))
                    break
                if imported in on_stack:
                    lowest[module] = min(lowest[module], index[imported])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[module])
                if lowest[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        yield sorted(component)


def test_no_module_imports_itself_back():
    graph = import_graph()
    found = list(cycles(graph))

    def described(component: list[str]) -> str:
        # One cycle through the group, as the imports go round.
        first = component[0]
        back = next(
            imported
            for imported in sorted(graph.find_modules_directly_imported_by(first))
            if imported in component
        )
        chain = graph.find_shortest_chain(importer=back, imported=first) or (back, first)
        return " -> ".join([first, *chain])

    assert not found, "Import cycles:\n" + "\n".join(map(described, found))


def documented_rules() -> tuple[set[Edge], set[Edge]]:
    """(source, forbidden) pairs and allowed (importer, imported) edges, from the Markdown tables.

    Every table whose header has a "Never imports" column: its first column
    names the source modules (`config/` is config), and in that column each
    module in backticks is forbidden to them, and each `importer -> imported`
    in backticks is an import allowed all the same.
    """
    forbidden: set[Edge] = set()
    allowed: set[Edge] = set()
    column = None
    for line in ARCHITECTURE.splitlines():
        if not line.startswith("|"):
            column = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if column is None:
            column = cells.index("Never imports") if "Never imports" in cells else -1
            continue
        if column < 0 or set(cells[0]) <= {"-", ":", " "}:
            continue  # a table without the column, or the header's underline
        sources = [name.rstrip("/") for name in re.findall(r"`([^`]+)`", cells[0])]
        for name in re.findall(r"`([^`]+)`", cells[column]):
            if "->" in name:
                importer, imported = (part.strip() for part in name.split("->"))
                allowed.add((importer, imported))
            else:
                forbidden.update((source, name) for source in sources)
    return forbidden, allowed


def contracted_rules() -> tuple[set[Edge], set[Edge]]:
    """The same, from pyproject.toml's forbidden contracts (their tests' exceptions left out)."""
    forbidden: set[Edge] = set()
    allowed: set[Edge] = set()
    for contract in PYPROJECT["contracts"]:
        if contract["type"] != "forbidden":
            continue
        forbidden.update(
            (source, module)
            for source in contract["source_modules"]
            for module in contract["forbidden_modules"]
        )
        for ignored in contract.get("ignore_imports", []):
            importer, imported = (part.strip() for part in ignored.split("->"))
            if not is_test(importer):
                allowed.add((importer, imported))
    return forbidden, allowed


def test_the_documented_import_rules_are_the_contracts():
    documented, documented_exceptions = documented_rules()
    contracted, contracted_exceptions = contracted_rules()

    assert documented, "docs/architecture.md has no table with a 'Never imports' column"
    assert sorted(documented - contracted) == [], "documented, but no contract forbids it"
    assert sorted(contracted - documented) == [], "forbidden by a contract, but not documented"
    assert sorted(documented_exceptions - contracted_exceptions) == [], (
        "documented as allowed, but no contract ignores it"
    )
    assert sorted(contracted_exceptions - documented_exceptions) == [], (
        "a contract lets it through, but the documentation does not say so"
    )
