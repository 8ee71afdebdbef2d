"""`envsync-local status --html`: the deployed dashboards drawn from the stand-ins' CloudWatch,
checked in a real headless browser (Debian's chromium; CI installs it, see .ci/run)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from envsync_local.cli import command_status_page
from envsync_tools.status_page import AlarmView, Chart, EnvPanel, Series, render_html

START = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium); CI fails instead of skipping")


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=180, check=True)


class Dom(HTMLParser):
    """The elements the page is checked by: tags with attributes, and the text of each element."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: List[Tuple[str, Dict[str, str]]] = []
        self.texts: List[Tuple[Dict[str, str], str]] = []
        self._open: List[Dict[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = {key: value or "" for key, value in attrs}
        self.elements.append((tag, attributes))
        self._open.append(attributes)

    def handle_endtag(self, tag):
        if self._open:
            self._open.pop()

    def handle_data(self, data):
        if self._open and data.strip():
            self.texts.append((self._open[-1], data.strip()))

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for name, found in self.elements
                   if name == tag and all(found.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items()))


def png_pixels(path: Path) -> Counter:
    """RGB colour counts of an 8-bit RGB/RGBA PNG (what chromium writes), decoded with zlib only."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, b"", None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        chunk = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    width, height, depth, colour_type = header[:4]
    assert depth == 8 and colour_type in (2, 6), f"unexpected PNG format {header}"
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    previous, colours = bytearray(stride), Counter()
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:(row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return colours


def colour(hex_code: str) -> bytes:
    return bytes.fromhex(hex_code.lstrip("#"))


# ---- the drawing alone ------------------------------------------------------------------------

def test_page_is_self_contained_and_escapes_what_it_shows():
    panel = EnvPanel(env="staging", dashboard="envsync-staging",
                     alarms=[AlarmView("envsync-staging-<x>", "ALARM", 'reason "quoted"')],
                     charts=[Chart("Lag <s>", "seconds", "Maximum",
                                   [Series("lag", [(START, 2.0), (START + dt.timedelta(minutes=5), 7.5)]),
                                    Series("empty", [])], threshold=60),
                             Chart("Nothing yet", "rows", "Sum", [Series("rows", [])])])
    page = render_html([panel], START, START + dt.timedelta(minutes=10), 60)
    dom = Dom(page)
    assert "<x>" not in page and "Lag <s>" not in page and "&lt;x&gt;" in page
    assert dom.count("script") == 0 and dom.count("link") == 0 and dom.count("img") == 0
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert dom.count("svg", class_="chart") == 2
    # two datapoints five periods apart: two dots, no line across the four empty periods
    assert dom.count("polyline", class_="series") == 0 and dom.count("circle", class_="point") == 2
    assert dom.count("line", class_="threshold") == 1
    assert dom.count("text", class_="no-data") == 1
    latest = {attrs["data-series"]: text for attrs, text in dom.texts if attrs.get("class") == "latest"}
    assert latest == {"lag": "7.50", "empty": "no data", "rows": "no data"}
    assert 'data-sum="9.50"' in page and "(last; 2 points, sum 9.50)" in page


def test_a_line_joins_only_datapoints_of_neighbouring_periods():
    minute = dt.timedelta(minutes=1)
    points = [(START, 1.0), (START + minute, 2.0), (START + 2 * minute, 1.0),  # three adjacent periods
              (START + 12 * minute, 1.0),                                      # alone, ten minutes later
              (START + 20 * minute, 3.0), (START + 21 * minute, 3.0)]          # two adjacent
    chart = Chart("Failures", "count", "Sum", [Series("failures", points)])
    dom = Dom(render_html([EnvPanel("dev", "envsync-dev", charts=[chart])], START, START + 30 * minute, 60))
    assert dom.count("circle", class_="point") == 6
    lines = [attrs["points"].split() for tag, attrs in dom.elements if tag == "polyline"]
    assert [len(line) for line in lines] == [3, 2], lines


# ---- from a launched system, after a real sync cycle, in a real browser ---------------------

@pytest.fixture(scope="module")
def page(launched, cycle, tmp_path_factory):
    path = tmp_path_factory.mktemp("status") / "status.html"
    assert command_status_page(launched.local, path, minutes=60, period=60) == 0
    return path


@pytest.mark.launched
def test_page_shows_every_envs_dashboard_in_a_headless_browser(page, launched, tmp_path):
    dom = Dom(browse(page, tmp_path / "profile", "--dump-dom").stdout)
    dashboards = {env: launched.client(env, "cloudwatch").get_dashboard(DashboardName=f"envsync-{env}")
                  for env in launched.envs}
    assert dom.count("section", class_="env") == len(launched.envs)
    # One chart per metric widget and one badge per alarm of the deployed dashboards.
    import json

    widgets = [w for d in dashboards.values() for w in json.loads(d["DashboardBody"])["widgets"]]
    assert dom.count("svg", class_="chart") == sum(1 for w in widgets if w["type"] == "metric") == 10
    # per env sync-failures, rotation-failures and break-glass (9), replication lag in staging and
    # prod (2), Aurora replica lag in prod (1)
    assert dom.count("span", class_="alarm") == sum(len(w["properties"]["alarms"]) for w in widgets
                                                    if w["type"] == "alarm") == 12
    badges = {text.split(": ")[0]: attrs["data-state"] for attrs, text in dom.texts if attrs.get("class") == "alarm"}
    assert badges["envsync-staging-sync-failures"] == "ALARM"  # the cycle's blocked promotion
    assert badges["envsync-dev-sync-failures"] == "OK"
    assert "MISSING" not in badges.values()
    latest = [(attrs["data-series"], text) for attrs, text in dom.texts if attrs.get("class") == "latest"]
    # Every execution of the cycle (two per env: the first sync and the blocked promotion) is
    # counted, the last one too, though the page is written right after it.
    runs = [float(attrs["data-sum"]) for attrs, _ in dom.texts
            if attrs.get("class") == "latest" and attrs.get("data-series") == "runs"]
    assert runs == [2, 2, 2], runs
    assert any(label == "rows changed" and text not in ("no data",) for label, text in latest), latest
    assert any(label == "schema drift" and text != "no data" for label, text in latest), latest
    # prod's reader: the stand-in publishes AuroraReplicaLag under the dimensions the panel asks for
    replica = {label: text for label, text in latest if label.startswith("replica lag")}
    assert set(replica) == {"replica lag", "replica lag (max)"} and "no data" not in replica.values(), replica
    assert dom.count("circle", class_="point") >= 10


@pytest.mark.launched
def test_screenshot_shows_the_charts_and_alarm_colours(page, tmp_path):
    shot = tmp_path / "status.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,2600")
    colours = png_pixels(shot)
    total = sum(colours.values())
    white = colours[b"\xff\xff\xff"]
    assert total == 1280 * 2600 and white < total * 0.97, "a blank page"
    # Alarm badges (OK green, ALARM red) and the first series' line are painted.
    for name, code in (("OK badge", "#2e7d32"), ("ALARM badge", "#c62828"), ("series", "#1f77b4")):
        assert colours[colour(code)] > 50, f"no {name} pixels ({code}) in the screenshot"
    kept = os.environ.get("ENVSYNC_STATUS_SCREENSHOT")
    if kept:
        shutil.copyfile(shot, kept)
