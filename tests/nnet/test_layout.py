"""The training package's layout (sidkd.nnet): the two trainings are tasks of one layer, so no
module reaches into trainer.py or transfer.py for helpers, and the modules import one another
without a circle."""

import ast
import glob
import os

from tests.conftest import REPO_ROOT

TRAININGS = {"sidkd.nnet.trainer": "sidkd/bin/train_student.py", "sidkd.nnet.transfer": "sidkd/bin/transfer_student.py"}


def module_name(path):
    rel = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def imports(path):
    """The sidkd modules a file imports (top level and inside functions)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sidkd"):
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names if alias.name.startswith("sidkd"))
    return out


def test_only_the_training_programs_import_the_trainings():
    sources = glob.glob(os.path.join(REPO_ROOT, "sidkd", "**", "*.py"), recursive=True)
    for path in sources:
        rel = os.path.relpath(path, REPO_ROOT)
        for training, program in TRAININGS.items():
            if training in imports(path) and module_name(path) not in TRAININGS:
                assert rel == program, f"{rel} imports {training}"


def test_the_training_modules_import_without_a_circle():
    paths = glob.glob(os.path.join(REPO_ROOT, "sidkd", "nnet", "**", "*.py"), recursive=True)
    graph = {module_name(p): imports(p) for p in paths}
    graph = {name: {m for m in deps if m in graph and m != name} for name, deps in graph.items()}
    state = {}

    def visit(name, trail):
        if state.get(name) == "open":
            raise AssertionError("import circle: " + " -> ".join(trail[trail.index(name):] + [name]))
        if state.get(name) == "done":
            return
        state[name] = "open"
        for dep in sorted(graph[name]):
            visit(dep, trail + [name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])
