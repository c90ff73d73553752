"""The base viewset builds a django-filter filter set only when the request has query
parameters; with them, filtering behaves as before on lists and detail pages alike."""

import pytest

from governance.filtersets import GovernedFilterBackend
from governance.testing import client_for, make_user
from sources.models import DataSource

URL = "/api/v1/sources/"


@pytest.fixture
def client(db):
    DataSource.objects.create(name="orders", kind="postgresql", host="db.example.com")
    DataSource.objects.create(name="stock", kind="mysql", host="db.example.com")
    return client_for(make_user("root", superuser=True))


@pytest.fixture
def filtersets_built(monkeypatch):
    built = []
    real = GovernedFilterBackend.get_filterset

    def spy(self, request, queryset, view):
        built.append(request.path)
        return real(self, request, queryset, view)

    monkeypatch.setattr(GovernedFilterBackend, "get_filterset", spy)
    return built


def test_no_query_parameters_builds_no_filter_set(client, filtersets_built):
    source = DataSource.objects.get(name="orders")
    assert client.get(URL).json()["count"] == 2
    assert client.get(f"{URL}{source.pk}/").status_code == 200
    assert filtersets_built == []


def test_query_parameters_still_filter_lists_and_detail_pages(client, filtersets_built):
    orders = DataSource.objects.get(name="orders")
    assert [s["name"] for s in client.get(f"{URL}?kind=mysql").json()["results"]] == ["stock"]
    assert client.get(f"{URL}{orders.pk}/?kind=mysql").status_code == 404
    assert client.get(f"{URL}{orders.pk}/?kind=postgresql").status_code == 200
    assert client.get(f"{URL}?ordering=-name").json()["results"][0]["name"] == "stock"
    assert len(filtersets_built) == 4


def test_a_bad_filter_value_is_still_a_400(client):
    response = client.get(f"{URL}?kind=db2")
    assert response.status_code == 400
    assert "kind" in response.json()
