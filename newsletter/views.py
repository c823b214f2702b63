import datetime

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from newsletter.models import Article, Edition

LATEST_COUNT = 6


def home(request: HttpRequest) -> HttpResponse:
    articles = Article.objects.published().select_related("section")[:LATEST_COUNT]
    return render(request, "newsletter/home.html", {"articles": articles})


def article(request: HttpRequest, slug: str) -> HttpResponse:
    queryset = Article.objects.select_related("section", "author")
    if not request.user.is_staff:
        queryset = queryset.published()
    return render(
        request, "newsletter/article.html", {"article": get_object_or_404(queryset, slug=slug)}
    )


def archive(request: HttpRequest) -> HttpResponse:
    editions = Edition.objects.filter(status=Edition.Status.SENT).prefetch_related("articles")
    return render(request, "newsletter/archive.html", {"editions": editions[:60]})


def edition(request: HttpRequest, date: str) -> HttpResponse:
    try:
        day = datetime.date.fromisoformat(date)
    except ValueError:
        raise Http404("Not a date.") from None
    editions = Edition.objects.all()
    if not request.user.is_staff:
        # Drafts and held editions are the editors' business until they go out.
        editions = editions.filter(status__in=[Edition.Status.SENDING, Edition.Status.SENT])
    edition = get_object_or_404(editions, date=day)
    return render(
        request,
        "newsletter/edition.html",
        {"edition": edition, "articles": edition.ordered_articles()},
    )
