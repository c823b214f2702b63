"""Tasks keep the contract that messages queued by the previous release rely on.

config/task_contract.json records every registered task's name and
parameters. A change that would make a worker of this release refuse, drop
or misread a message of the previous one fails here, with how to make it
compatibly (config/task_contract.py, HOW_TO).
"""

import pytest

from config import task_contract
from config.celery import app


def test_the_tasks_keep_the_recorded_contract():
    problems = task_contract.incompatibilities(task_contract.recorded(), task_contract.current(app))
    if problems:
        pytest.fail("\n".join(problems) + "\n\n" + task_contract.HOW_TO, pytrace=False)


def test_the_recorded_contract_is_up_to_date():
    # A new task or parameter is recorded, so that the release after this one
    # is held to it.
    assert task_contract.recorded() == task_contract.current(app), (
        "config/task_contract.json is out of date: python -m config.task_contract --write"
    )


def test_the_send_batch_is_recorded_by_its_arguments():
    # The shape the real-process test (delivery/tests/test_rolling_upgrade.py) queues.
    batch = task_contract.recorded()["newsletter.tasks.send_delivery_batch"]
    assert [parameter["name"] for parameter in batch] == ["edition_id", "first_id", "last_id"]


# What the previous release's tasks looked like, and changes to them.
def send_batch(edition_id, first_id, last_id):
    pass


def with_a_new_parameter_and_a_default(edition_id, first_id, last_id, carrier="smtp"):
    pass


def with_a_new_keyword_only_parameter_and_a_default(edition_id, first_id, last_id, *, dry=False):
    pass


def with_a_new_parameter_without_default(edition_id, first_id, last_id, carrier):
    pass


def with_a_parameter_renamed(edition_id, first_id, end_id):
    pass


def with_a_parameter_removed(edition_id, first_id):
    pass


def with_parameters_moved(edition_id, last_id, first_id):
    pass


def with_positional_made_keyword_only(edition_id, *, first_id, last_id):
    pass


def send_email(reader_email_id, attempt=1):
    pass


def send_email_whose_parameter_lost_its_default(reader_email_id, attempt):
    pass


def problems(before, after, name="newsletter.tasks.send_delivery_batch"):
    old = {name: task_contract.parameters(before)}
    new = {name: task_contract.parameters(after)}
    return task_contract.incompatibilities(old, new)


def test_the_same_signature_is_compatible():
    assert problems(send_batch, send_batch) == []


@pytest.mark.parametrize(
    "after", [with_a_new_parameter_and_a_default, with_a_new_keyword_only_parameter_and_a_default]
)
def test_a_new_parameter_with_a_default_is_compatible(after):
    assert problems(send_batch, after) == []


@pytest.mark.parametrize(
    ("after", "complaint"),
    [
        (with_a_new_parameter_without_default, "new parameter 'carrier' has no default"),
        (with_a_parameter_renamed, "argument 3 was 'last_id' and is now 'end_id'"),
        (with_a_parameter_removed, "parameter 'last_id' was removed"),
        (with_parameters_moved, "argument 2 was 'first_id' and is now 'last_id'"),
        (with_positional_made_keyword_only, "parameter 'first_id' was removed"),
    ],
)
def test_a_breaking_change_is_named(after, complaint):
    found = problems(send_batch, after)
    assert any(complaint in problem for problem in found), found


def test_a_parameter_that_loses_its_default_is_named():
    found = problems(send_email, send_email_whose_parameter_lost_its_default)
    assert found == ["newsletter.tasks.send_delivery_batch: parameter 'attempt' lost its default"]


def test_a_task_renamed_or_removed_is_named_and_an_alias_keeps_it():
    old = {"newsletter.tasks.send_batch": task_contract.parameters(send_batch)}
    renamed = {"newsletter.tasks.send_range": task_contract.parameters(send_batch)}
    assert task_contract.incompatibilities(old, renamed) == [
        "newsletter.tasks.send_batch: no longer registered (renamed or removed): the previous "
        "release's messages under this name would be dropped as unregistered"
    ]
    with_alias = {**renamed, "newsletter.tasks.send_batch": task_contract.parameters(send_batch)}
    assert task_contract.incompatibilities(old, with_alias) == []
