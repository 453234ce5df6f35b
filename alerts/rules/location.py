"""Location alerts: a new country or network; impossible travel between two logins."""

from datetime import datetime

from alerts.models import AlertType, EventType, Severity
from alerts.rules.base import Param, Rule, remember


class LocationRule(Rule):
    """2. A login from a new country or network; impossible travel between two logins."""

    key = "new_location"
    alert_type = AlertType.LOCATION
    events = frozenset({EventType.LOGIN_SUCCEEDED})
    params = {
        "max_speed_kmh": Param(900, maximum=100_000),
        "min_distance_km": Param(100, maximum=20_000, help="closer pairs are within geolocation error"),
        "anonymizer_networks": Param(
            [
                "M247",
                "DataCamp",
                "Mullvad",
                "NordVPN",
                "Proton",
                "Private Internet Access",
                "ExpressVPN",
                "Surfshark",
                "Tor",
            ]
        ),
    }

    def check(self, check):
        from alerts.geo import distance_km, locate

        event, state = check.event, check.state
        place = locate(event.ip, event.context.get("geo"))
        anonymizers = [name.lower() for name in check.params["anonymizer_networks"]]
        hidden = bool(place.network) and any(name in place.network.lower() for name in anonymizers)
        findings = []
        first = not state.countries and not state.networks and not state.last_login
        if not first:
            new_country = place.country and place.country not in state.countries
            new_network = place.network and place.network not in state.networks and not hidden
            if new_country:
                via = f" through {place.network}" if place.network else ""
                reason = f"Login from a country never seen on this account ({place.country}{via})."
                findings.append(self.finding(check, reason))
            elif new_network:
                reason = f"Login from a network never seen on this account ({place.network})."
                findings.append(self.finding(check, reason, severity=Severity.LOW))
            last = state.last_login
            if last.get("lat") is not None and place.lat is not None and not hidden and not last.get("hidden"):
                km = distance_km((last["lat"], last["lon"]), (place.lat, place.lon))
                hours = max((event.occurred_at - datetime.fromisoformat(last["at"])).total_seconds() / 3600, 1 / 60)
                if km >= check.params["min_distance_km"] and km / hours > check.params["max_speed_kmh"]:
                    minutes = round(hours * 60)
                    reason = (
                        f"Impossible travel: {km:,.0f} km from the previous login ({last.get('country') or '?'} to "
                        f"{place.country or '?'}) in {minutes:,} minute{'' if minutes == 1 else 's'}."
                    )
                    findings.append(
                        self.finding(check, reason, severity=Severity.HIGH, evidence=[last["event"], event.pk])
                    )
        if place.country:
            remember(state.countries, place.country, limit=30)
        if place.network and not hidden:
            remember(state.networks, place.network, limit=30)
        if place.lat is not None:
            state.last_login = {
                "at": event.occurred_at.isoformat(), "lat": place.lat, "lon": place.lon, "country": place.country,
                "event": event.pk, "hidden": hidden,
            }  # fmt: skip
        return findings
