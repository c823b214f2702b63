"""Content Security Policy variants for the few pages that need one of their own.

The site's policy is settings.SECURE_CSP. An email shown in a sandboxed
srcdoc frame (the dev outbox, the editors' preview) inherits the page's
policy, and emails are styled inline (style attributes and a <style> block,
as mail clients need). Those pages allow inline styles; scripts stay as
strict as everywhere (the frames are sandboxed without allow-scripts too).
"""

from django.conf import settings
from django.utils.csp import CSP

EMAIL_PREVIEW: dict[str, list[str]] = {
    **settings.SECURE_CSP,
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
}
