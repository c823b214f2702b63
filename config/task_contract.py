"""The public contract of our Celery tasks: each one's name and parameters.

During a rolling upgrade, workers of the previous release and of the new one
consume the same queue (docs/operations.md, "Upgrades"): a message queued by
either release's code may be run by either release's worker. A message
carries only the task's name and its arguments, so those must keep meaning
the same thing. config/task_contract.json records them;
config/tests/test_task_contract.py fails when a change breaks them, and
says how to make it compatibly.

    python -m config.task_contract --write          # record a compatible change
    python -m config.task_contract --write --force  # or the end of an alias's release
"""

import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from celery import Celery

CONTRACT_FILE = Path(__file__).with_name("task_contract.json")

type Parameter = dict[str, str | bool]
type Contract = dict[str, list[Parameter]]

POSITIONAL = {"POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD"}
BY_KEYWORD = {"POSITIONAL_OR_KEYWORD", "KEYWORD_ONLY"}
VARIADIC = {"VAR_POSITIONAL", "VAR_KEYWORD"}

HOW_TO = """\
Workers of the previous release and of this one share the queue during a
rolling upgrade (docs/operations.md, "Upgrades"): a task's name and
parameters are a contract with messages already queued. To change one
compatibly:
- a new parameter gets a default, and callers pass it only from the next
  release on (a worker of the previous release would refuse it);
- a parameter is never removed, renamed or moved, nor loses its default:
  add the new one beside it and ignore the old one for a release;
- a task renamed or removed keeps its old name registered for one release,
  as an alias that calls the new one:
      @shared_task(name="newsletter.tasks.old_name")
      def old_name(edition_id: int) -> None:
          new_name(edition_id)
  and is deleted in the release after (record that with --write --force).
Then record the contract: python -m config.task_contract --write"""


def parameters(function: Callable[..., Any]) -> list[Parameter]:
    """The parameters a message must match: name, kind, and whether it may be left out."""
    return [
        {
            "name": parameter.name,
            "kind": parameter.kind.name,
            "default": parameter.default is not inspect.Parameter.empty,
        }
        for parameter in inspect.signature(function).parameters.values()
    ]


def current(app: Celery) -> Contract:
    """Every task our apps register (Celery's own left out), from its signature."""
    app.autodiscover_tasks(force=True)
    return {
        # A bound task's `run` is bound already: `self` is not a parameter of the message.
        name: parameters(task.run)
        for name, task in sorted(app.tasks.items())
        if not name.startswith("celery.")
    }


def recorded(path: Path = CONTRACT_FILE) -> Contract:
    if not path.exists():
        return {}
    contract: Contract = json.loads(path.read_text())["tasks"]
    return contract


def write(contract: Contract, path: Path = CONTRACT_FILE) -> None:
    document = {
        "about": "Each Celery task's name and parameters, as messages carry them: "
        "config/task_contract.py says how to change them compatibly.",
        "tasks": contract,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _task_incompatibilities(
    name: str, old: Sequence[Parameter], new: Sequence[Parameter]
) -> list[str]:
    problems = []
    new_kinds = {str(parameter["kind"]) for parameter in new}
    new_by_name = {parameter["name"]: parameter for parameter in new}

    old_positional = [p for p in old if p["kind"] in POSITIONAL]
    new_positional = [p for p in new if p["kind"] in POSITIONAL]
    for index, before in enumerate(old_positional):
        if index >= len(new_positional):
            if "VAR_POSITIONAL" not in new_kinds:
                problems.append(f"{name}: parameter {before['name']!r} was removed")
            continue
        after = new_positional[index]
        if after["name"] != before["name"]:
            problems.append(
                f"{name}: argument {index + 1} was {before['name']!r} and is now "
                f"{after['name']!r} (renamed, removed or moved)"
            )
        elif before["default"] and not after["default"]:
            problems.append(f"{name}: parameter {before['name']!r} lost its default")

    for before in old:
        if before["kind"] == "KEYWORD_ONLY":
            keyword = new_by_name.get(before["name"])
            if keyword is None or keyword["kind"] not in BY_KEYWORD:
                if "VAR_KEYWORD" not in new_kinds:
                    problems.append(f"{name}: parameter {before['name']!r} was removed")
            elif before["default"] and not keyword["default"]:
                problems.append(f"{name}: parameter {before['name']!r} lost its default")
        elif before["kind"] in VARIADIC and before["kind"] not in new_kinds:
            problems.append(f"{name}: no longer takes {before['kind']} ({before['name']!r})")

    old_names = {parameter["name"] for parameter in old}
    for after in new:
        new_and_required = after["kind"] not in VARIADIC and not after["default"]
        if after["name"] not in old_names and new_and_required:
            problems.append(
                f"{name}: new parameter {after['name']!r} has no default "
                "(the previous release's messages do not carry it)"
            )
    return problems


def incompatibilities(old: Mapping[str, Sequence[Parameter]], new: Contract) -> list[str]:
    """What a message shaped by `old` would find broken in `new`; empty when compatible."""
    problems = []
    for name, old_parameters in sorted(old.items()):
        if name not in new:
            problems.append(
                f"{name}: no longer registered (renamed or removed): the previous "
                "release's messages under this name would be dropped as unregistered"
            )
            continue
        problems += _task_incompatibilities(name, old_parameters, new[name])
    return problems


def main(arguments: Sequence[str]) -> int:
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from config.celery import app

    contract = current(app)
    problems = incompatibilities(recorded(), contract)
    # --force: an alias or parameter kept for its release is deleted in the
    # next one, when no worker or message of the release before is left.
    if problems and "--force" not in arguments:
        print("\n".join(problems) + "\n\n" + HOW_TO, file=sys.stderr)
        return 1
    if "--write" in arguments:
        write(contract)
        print(f"Recorded {len(contract)} tasks in {CONTRACT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
