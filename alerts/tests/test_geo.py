import pytest

from alerts.geo import centroids, distance_km, locate


def test_distance_paris_london():
    assert distance_km((48.8566, 2.3522), (51.5074, -0.1278)) == pytest.approx(344, abs=3)


def test_ip_to_country_network_and_centroid():
    place = locate("81.2.69.160")
    assert (place.country, place.network) == ("GB", "Andrews & Arnold Ltd")
    assert (place.lat, place.lon) == centroids()["GB"] and not place.precise


def test_ipv6_and_the_events_own_geo():
    assert locate("2001:4860:4860::8888").country == "US"
    place = locate("81.2.69.160", {"country": "FR", "lat": 48.86, "lon": 2.35})
    assert (place.country, place.lat, place.precise) == ("FR", 48.86, True)


def test_private_addresses_and_no_address():
    assert locate("10.0.0.1").country is None and locate(None).country is None
    assert len(centroids()) > 200
