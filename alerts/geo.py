"""Locating an IP offline: country and network (ASN) from geoip2fast's shipped data; coordinates
from a MaxMind-format city database when the operator configures GEOIP_CITY_DB, else the
country's centroid. An event's own context.geo overrides all of them."""

import ipaddress
import math
import threading
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

_lock = threading.Lock()


@dataclass(frozen=True)
class Place:
    country: str | None = None
    network: str | None = None  # the ASN's name; geoip2fast gives names, not numbers
    lat: float | None = None
    lon: float | None = None
    precise: bool = False  # coordinates of a city, not a country's centre


@lru_cache(maxsize=1)
def _geoip():
    from geoip2fast import GeoIP2Fast

    with _lock:  # ~0.3 s once per process; lookups are then ~50 µs
        return GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn-ipv6.dat.gz", verbose=False)


@lru_cache(maxsize=1)
def _city_db():
    path = getattr(settings, "GEOIP_CITY_DB", "")
    if not path:
        return None
    import maxminddb

    return maxminddb.open_database(path)


def _each_country(read):
    """(ISO 3166-1 alpha-2 code, `read(country)`) of each country that has both."""
    from countryinfo import all_countries

    for country in all_countries():
        try:
            code, value = country.iso(2), read(country)
        except (KeyError, AttributeError, TypeError, ValueError):  # noqa: S112 (a few territories lack one)
            continue
        if code and value:
            yield code.upper(), value


@lru_cache(maxsize=1)
def centroids() -> dict[str, tuple[float, float]]:
    return {
        code: (float(latlng[0]), float(latlng[1]))
        for code, latlng in _each_country(lambda country: country.latlng())
        if len(latlng) == 2
    }


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    return {code: name[:1].upper() + name[1:] for code, name in _each_country(lambda country: country.name())}


def country_name(code: str | None) -> str:
    """The country's English name ("France" for "FR"), or "" for none or an unknown code."""
    return _country_names().get(code.upper(), "") if isinstance(code, str) else ""


def locate(ip: str | None, geo: dict | None = None) -> Place:
    geo = geo or {}
    country, network, lat, lon, precise = geo.get("country"), None, geo.get("lat"), geo.get("lon"), "lat" in geo
    if ip:
        found = _locate_ip(ip)
        network = found.network
        country = country or found.country
        if lat is None and found.precise:
            lat, lon, precise = found.lat, found.lon, True
    if lat is None and country in centroids():
        lat, lon = centroids()[country]
    return Place(country=country, network=network, lat=lat, lon=lon, precise=precise)


@lru_cache(maxsize=50_000)
def _locate_ip(ip: str) -> Place:
    """What the offline databases say of an address (the same ones recur: an account's logins)."""
    address = ipaddress.ip_address(ip)
    if address.is_private or address.is_loopback or address.is_reserved or address.is_link_local:
        return Place()
    found = _geoip().lookup(ip)
    network = found.asn_name or None
    country = found.country_code if found.country_code not in ("", "--") else None
    if (db := _city_db()) is not None:
        record = db.get(ip) or {}
        location = record.get("location") or {}
        country = country or (record.get("country") or {}).get("iso_code")
        if "latitude" in location:
            return Place(
                country=country, network=network, lat=location["latitude"], lon=location["longitude"], precise=True
            )
    return Place(country=country, network=network)


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(min(1.0, h)))
