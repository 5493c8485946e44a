"""URL resolution order: the API, which takes most requests, is matched before the pages."""

from django.urls import resolve
from django.urls.resolvers import URLPattern


def test_claim_next_resolves_without_trying_the_page_routes(monkeypatch):
    tried = []
    original = URLPattern.resolve

    def counting(self, path):
        tried.append(str(self.pattern))
        return original(self, path)

    monkeypatch.setattr(URLPattern, "resolve", counting)
    match = resolve("/api/workflow/tasks/claim/next")

    assert match.url_name == "task-claim-next"
    assert len(tried) <= 3, tried


def test_pages_and_schema_still_resolve_after_the_api():
    assert resolve("/api/schema/").url_name == "api-schema"
    assert resolve("/api/docs/").url_name == "api-docs"
    assert resolve("/inbox/").url_name == "inbox"
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/tasks/7/").url_name == "task-page"
