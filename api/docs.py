"""The browsable reference page at /api/v1/: Swagger UI, served from this site.

drf-spectacular's split view serves the page and its start-up script as two
same-origin files, and drf-spectacular-sidecar serves Swagger UI itself, so
the page runs under the site's Content Security Policy with no inline
script and nothing from a CDN.
"""

from drf_spectacular.views import SpectacularSwaggerSplitView


class ReferencePage(SpectacularSwaggerSplitView):
    template_name = "api/reference.html"
    title = "The Morning Briefing API"
