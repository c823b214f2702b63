"""The API's reference page in a real browser: Swagger UI renders under the site's CSP."""

from playwright.sync_api import ConsoleMessage, Page, expect

from e2e.conftest import screenshot


def test_the_reference_page_renders_the_document_without_a_csp_violation(new_page):
    page: Page = new_page()
    refused: list[str] = []

    def note_refusals(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            refused.append(message.text)

    page.on("console", note_refusals)

    page.goto("/api/v1/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("The Morning Briefing API")
    expect(page.locator(".opblock-tag", has_text="Readers")).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/readers/").first).to_be_visible()
    assert refused == []
    screenshot(page, "api-reference", widths=(1280,))


def test_the_api_answers_a_browser_without_a_key_with_a_problem(new_page):
    page: Page = new_page()
    answer = page.request.get("/api/v1/readers/")
    assert answer.status == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["status"] == 401
