# The alert text shared by contrib/notify/mail and contrib/notify/webhook:
# reads one alert from the environment the collector gives its notify command
# (ROCTM_* variables, see collector/src/notify.rs and contrib/README.md) and
# words it for a person. Python 3 standard library only.
#
# Variables used, all optional except ROCTM_EVENT and ROCTM_GATEWAY:
#   ROCTM_EVENT ROCTM_GATEWAY ROCTM_TIME ROCTM_UNIX_TIME ROCTM_AGE_SECONDS
#   ROCTM_TUNNEL_USER ROCTM_TUNNEL_LISTEN_PORT ROCTM_TUNNEL_TARGET ROCTM_TUNNEL_PID
#   ROCTM_ROC ROCTM_STATION ROCTM_LISTEN ROCTM_TARGET ROCTM_STATE
#   ROCTM_CONNECTIONS ROCTM_CONNECTED ROCTM_PAGE_URL
# An empty variable counts as absent: its line is left out. Runs of white
# space and control characters in a value become one space.

import datetime

# What each event means, as the start of the headline. Events not listed
# here (a newer collector's) are named as they come.
GATEWAY_EVENTS = {
    "gateway_late": "is late",
    "gateway_down": "is down",
    "gateway_up": "is reporting",
}
TUNNEL_EVENTS = {
    "tunnel_up": "Tunnel up",
    "tunnel_down": "Tunnel gone",
    "tunnel_missing": "Expected tunnel missing",
    "tunnel_broken": "Expected tunnel broken",
    "tunnel_restored": "Expected tunnel restored",
    "tunnel_flapping": "Tunnel flapping",
}


class AlertError(Exception):
    """The environment does not hold an alert."""


def _get(env, name):
    # Line breaks and other control characters become spaces: a value can
    # never start a new line (a mail header, a forged detail line).
    value = "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in env.get(name, ""))
    value = " ".join(value.split())
    return value or None


def _int(env, name):
    value = _get(env, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise AlertError("%s is not a whole number: %r" % (name, value))


def when(seconds):
    """Unix seconds as `2025-11-23 00:00:00 UTC` (as they are, when out
    of the calendar's range)."""
    try:
        t = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "%d (Unix seconds)" % seconds
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds):
    """`45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`."""
    if seconds < 120:
        return "%d s" % seconds
    minutes = seconds // 60
    if minutes < 120:
        return "%d min" % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%d h %d min" % (hours, minutes) if minutes else "%d h" % hours
    days, hours = divmod(hours, 24)
    return "%d d %d h" % (days, hours) if hours else "%d d" % days


def _target(value):
    # A dynamic (-D) or remote forward has no target host: `:0` or `:`.
    if value is None or value.startswith(":"):
        return None
    return value


class Alert:
    """One alert, read from `env` (a mapping such as os.environ)."""

    def __init__(self, env):
        self.event = _get(env, "ROCTM_EVENT")
        self.gateway = _get(env, "ROCTM_GATEWAY")
        if self.event is None or self.gateway is None:
            raise AlertError(
                "no alert in the environment (ROCTM_EVENT and ROCTM_GATEWAY "
                "are set by the collector's notify command)"
            )
        self.unix_time = _int(env, "ROCTM_UNIX_TIME")
        self.time_text = _get(env, "ROCTM_TIME")
        self.age = _int(env, "ROCTM_AGE_SECONDS")
        self.roc = _get(env, "ROCTM_ROC")
        self.station = _get(env, "ROCTM_STATION")
        self.port = _get(env, "ROCTM_LISTEN") or _get(env, "ROCTM_TUNNEL_LISTEN_PORT")
        self.target = _target(_get(env, "ROCTM_TARGET")) or _target(
            _get(env, "ROCTM_TUNNEL_TARGET")
        )
        self.user = _get(env, "ROCTM_TUNNEL_USER")
        self.pid = _get(env, "ROCTM_TUNNEL_PID")
        self.state = _get(env, "ROCTM_STATE")
        self.connections = _int(env, "ROCTM_CONNECTIONS")
        self.connected = _get(env, "ROCTM_CONNECTED")
        self.page_url = _get(env, "ROCTM_PAGE_URL")

    def _at(self, seconds):
        return when(seconds) if seconds is not None else self.time_text

    def since(self):
        """Since when the new state holds: for a late or down gateway, the
        last time it was heard; otherwise the time of the change."""
        if self.event in ("gateway_late", "gateway_down"):
            if self.unix_time is not None and self.age is not None:
                return when(self.unix_time - self.age)
            return None
        return self._at(self.unix_time)

    def _for_whom(self):
        if self.roc and self.station:
            return " for %s (%s)" % (self.roc, self.station)
        if self.roc:
            return " for %s" % self.roc
        if self.station:
            return " (%s)" % self.station
        return ""

    def headline(self):
        """One line: what happened, where, and to whom it matters."""
        if self.event in GATEWAY_EVENTS:
            line = "Gateway %s %s" % (self.gateway, GATEWAY_EVENTS[self.event])
            if self.event != "gateway_up" and self.age is not None:
                line += ": silent for %s" % duration(self.age)
            elif self.event == "gateway_up" and self.age:
                line += " again after %s of silence" % duration(self.age)
            return line
        what = TUNNEL_EVENTS.get(self.event, self.event.replace("_", " ").capitalize())
        where = "port %s on %s" % (self.port, self.gateway) if self.port else self.gateway
        return "%s: %s%s" % (what, where, self._for_whom())

    def details(self):
        """(label, value) pairs, the absent ones left out."""
        rows = [
            ("Gateway", self.gateway),
            ("ROC", self.roc),
            ("Station", self.station),
            ("Port", self.port),
            ("Target", self.target),
        ]
        if self.user:
            rows.append(("Account", self.user + (" (pid %s)" % self.pid if self.pid else "")))
        rows.append(("State", self.state))
        if self.connections is not None:
            if self.connections == 0:
                rows.append(("In use", "no, idle at the last report"))
            else:
                used = "yes, %d connection%s at the last report" % (
                    self.connections,
                    "" if self.connections == 1 else "s",
                )
                if self.connected:
                    used += " (%s)" % self.connected
                rows.append(("In use", used))
        if self.event in ("gateway_late", "gateway_down"):
            rows.append(("Silent since", self.since()))
        else:
            rows.append(("Since", self.since()))
        rows.append(("Event", self.event))
        rows.append(("Page", self.page_url))
        return [(label, value) for label, value in rows if value]

    def text(self):
        """The headline, then one `Label: value` line per detail."""
        lines = [self.headline(), ""]
        lines += ["%s: %s" % row for row in self.details()]
        return "\n".join(lines) + "\n"
