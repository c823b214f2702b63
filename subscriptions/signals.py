"""What the readers' app tells other apps without importing them.

digest_choices_changed(subscriber, changed): a reader's sections, days or
format changed (actions.account.do_set_digest_choices); `changed` names
which of "sections", "days" and "format". Sections are a many-to-many
relation, whose change no save signal reports. Sent inside the transaction.
"""

from django.dispatch import Signal

digest_choices_changed = Signal()
