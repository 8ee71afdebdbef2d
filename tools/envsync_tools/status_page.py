"""`envsync-local status --html FILE`: each env's deployed dashboard, drawn offline as one page.

The page is read from what the sync stacks deployed: each env's dashboard (`envsync-<env>`)
names the alarms and the metrics (namespace, dimensions, statistic) to show, and the figures
come from the stand-in's CloudWatch in that env's account. So the page charts exactly what the
dashboard in AWS would, at a finer period by default (a local cycle lasts seconds, not hours).
The output is one self-contained HTML file: inline SVG, no script, nothing fetched.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
STATE_COLOURS = {"OK": "#2e7d32", "ALARM": "#c62828", "INSUFFICIENT_DATA": "#757575"}
WIDTH, HEIGHT, MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 520, 180, 56, 28, 12


Point = Tuple[dt.datetime, float]


@dataclass
class Series:
    label: str
    points: List[Point]


@dataclass
class Chart:
    title: str
    unit: str
    statistic: str
    series: List[Series]
    threshold: Optional[float] = None


@dataclass
class AlarmView:
    name: str
    state: str
    reason: str = ""


@dataclass
class EnvPanel:
    env: str
    dashboard: str
    alarms: List[AlarmView] = field(default_factory=list)
    charts: List[Chart] = field(default_factory=list)
    problem: Optional[str] = None


# ---- reading (the edge: CloudWatch calls) -----------------------------------------------------

def metric_spec(entry: Sequence[Any]) -> Tuple[str, str, List[Dict[str, str]], Dict[str, Any]]:
    """A dashboard metric entry: [namespace, name, dim, value, ..., {options}]."""
    names = [item for item in entry if not isinstance(item, dict)]
    options = next((item for item in entry if isinstance(item, dict)), {})
    dimensions = [{"Name": str(key), "Value": str(value)} for key, value in zip(names[2::2], names[3::2])]
    return str(names[0]), str(names[1]), dimensions, options


def read_panel(cloudwatch: Any, env: str, start: dt.datetime, end: dt.datetime, period: int) -> EnvPanel:
    """The env's dashboard with its figures between start and end (`period` seconds per point)."""
    name = f"envsync-{env}"
    panel = EnvPanel(env=env, dashboard=name)
    try:
        body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    except cloudwatch.exceptions.ClientError as error:
        panel.problem = f"no dashboard {name} ({error.response['Error']['Code']}): is the sync stack launched?"
        return panel
    for widget in body.get("widgets", []):
        properties = widget.get("properties", {})
        if widget.get("type") == "alarm":
            names = [arn.split(":alarm:", 1)[-1] for arn in properties.get("alarms", [])]
            found = {alarm["AlarmName"]: alarm for alarm in
                     cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]} if names else {}
            panel.alarms.extend(
                AlarmView(alarm, found[alarm]["StateValue"], found[alarm].get("StateReason", ""))
                if alarm in found else AlarmView(alarm, "MISSING", "the dashboard names an alarm that does not exist")
                for alarm in names)
        elif widget.get("type") == "metric":
            panel.charts.append(read_chart(cloudwatch, properties, start, end, period))
    return panel


def read_chart(cloudwatch: Any, properties: Dict[str, Any], start: dt.datetime, end: dt.datetime,
               period: int) -> Chart:
    series = []
    for entry in properties.get("metrics", []):
        namespace, metric, dimensions, options = metric_spec(entry)
        statistic = options.get("stat", properties.get("stat", "Average"))
        # EndTime is exclusive and whole seconds: a value put in the last second would be left out.
        datapoints = cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=metric, Dimensions=dimensions, StartTime=start,
            EndTime=end + dt.timedelta(seconds=1), Period=period, Statistics=[statistic])["Datapoints"]
        points = sorted((point["Timestamp"], float(point[statistic])) for point in datapoints)
        series.append(Series(options.get("label", metric), points))
    lines = properties.get("annotations", {}).get("horizontal", [])
    return Chart(title=properties.get("title", ""), unit=properties.get("yAxis", {}).get("left", {}).get("label", ""),
                 statistic=properties.get("stat", ""), series=series,
                 threshold=float(lines[0]["value"]) if lines else None)


# ---- drawing (pure) ---------------------------------------------------------------------------

def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def runs_of_adjacent_points(points: List[Point], period: int) -> List[List[Point]]:
    """The series cut where a period has no datapoint: a line may join only neighbouring periods
    (two failures ten minutes apart are two points, not a flat line between them)."""
    runs: List[List[Point]] = []
    for point in points:
        if runs and (point[0] - runs[-1][-1][0]).total_seconds() <= period * 1.5:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def chart_svg(chart: Chart, start: dt.datetime, end: dt.datetime, period: int) -> str:
    """One chart as inline SVG: axes, the threshold, per series a dot per datapoint and a line
    through each run of datapoints in adjacent periods."""
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 10, HEIGHT - MARGIN_BOTTOM - MARGIN_TOP
    values = [value for series in chart.series for _, value in series.points]
    top = max(values + ([chart.threshold] if chart.threshold is not None else []) + [1.0])
    span = max((end - start).total_seconds(), 1.0)

    def x(moment: dt.datetime) -> float:
        return MARGIN_LEFT + plot_w * min(max((moment - start).total_seconds() / span, 0.0), 1.0)

    def y(value: float) -> float:
        return MARGIN_TOP + plot_h * (1 - value / top)

    title = html.escape(chart.title)
    parts = [f'<svg class="chart" role="img" aria-label="{title}" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
             'stroke="#bbb"/>',
             f'<text x="4" y="{MARGIN_TOP + 10}" font-size="11">{_number(top)}</text>',
             f'<text x="4" y="{MARGIN_TOP + plot_h}" font-size="11">0</text>',
             f'<text x="{MARGIN_LEFT}" y="{HEIGHT - 8}" font-size="11">{start:%H:%M}</text>',
             f'<text x="{WIDTH - 10}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">{end:%H:%M} UTC</text>']
    if chart.threshold is not None:
        level = y(chart.threshold)
        parts.append(f'<line class="threshold" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{level:.1f}" '
                     f'y2="{level:.1f}" stroke="#c62828" stroke-dasharray="6 4"/>')
    if not values:
        parts.append(f'<text class="no-data" x="{MARGIN_LEFT + plot_w / 2 - 30}" y="{MARGIN_TOP + plot_h / 2}" '
                     'font-size="13" fill="#757575">no data</text>')
    for index, series in enumerate(chart.series):
        colour = PALETTE[index % len(PALETTE)]
        coordinates = [(x(moment), y(value)) for moment, value in series.points]
        for run in runs_of_adjacent_points(series.points, period):
            if len(run) > 1:
                joined = " ".join(f"{x(moment):.1f},{y(value):.1f}" for moment, value in run)
                parts.append(f'<polyline class="series" points="{joined}" fill="none" stroke="{colour}" '
                             'stroke-width="2"/>')
        parts.extend(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>'
                     for px, py in coordinates)
    parts.append("</svg>")
    return "".join(parts)


def _legend(chart: Chart) -> str:
    items = []
    for index, series in enumerate(chart.series):
        latest = _number(series.points[-1][1]) if series.points else "no data"
        summed = _number(sum(value for _, value in series.points))
        count = len(series.points)
        items.append(f'<li><span class="swatch" style="background:{PALETTE[index % len(PALETTE)]}"></span>'
                     f'{html.escape(series.label)}: <b class="latest" data-series="{html.escape(series.label)}" '
                     f'data-sum="{summed}">{latest}</b> <small>(last; {count} point{"" if count == 1 else "s"}, '
                     f'sum {summed})</small></li>')
    if chart.threshold is not None:
        items.append(f'<li>alarm threshold: <b>{_number(chart.threshold)}</b></li>')
    return f'<ul class="legend">{"".join(items)}</ul>'


def render_html(panels: List[EnvPanel], start: dt.datetime, end: dt.datetime, period: int) -> str:
    """The whole page: per env, its alarm states, then one chart per dashboard metric widget.

    The time axis starts a period before the first datapoint on the page (within start..end),
    so a few minutes of local runs are not squeezed against the right edge of a long window."""
    moments = [moment for panel in panels for chart in panel.charts for series in chart.series
               for moment, _ in series.points]
    if moments:
        start = max(start, min(moments) - dt.timedelta(seconds=period))
    sections = []
    for panel in panels:
        body = [f'<section class="env" id="env-{html.escape(panel.env)}"><h2>{html.escape(panel.env)} '
                f'<small>dashboard {html.escape(panel.dashboard)}</small></h2>']
        if panel.problem:
            body.append(f'<p class="problem">{html.escape(panel.problem)}</p>')
        body.append('<div class="alarms">' + "".join(
            f'<span class="alarm" data-state="{html.escape(alarm.state)}" title="{html.escape(alarm.reason)}" '
            f'style="background:{STATE_COLOURS.get(alarm.state, "#6d4c41")}">{html.escape(alarm.name)}: '
            f'{html.escape(alarm.state)}</span>' for alarm in panel.alarms) + "</div>")
        for chart in panel.charts:
            body.append(f'<figure><figcaption>{html.escape(chart.title)} <small>({html.escape(chart.unit)}, '
                        f'{html.escape(chart.statistic)} per {period} s)</small></figcaption>'
                        f'{chart_svg(chart, start, end, period)}{_legend(chart)}</figure>')
        body.append("</section>")
        sections.append("".join(body))
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>envsync status</title>"
        "<style>body{font-family:sans-serif;margin:16px;color:#222}section{border-top:2px solid #ddd;"
        "padding-top:8px}figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}"
        "figcaption{font-weight:bold}.alarm{display:inline-block;color:#fff;padding:4px 10px;margin:4px;"
        "border-radius:4px;font-size:13px}.legend{list-style:none;padding:0;margin:4px 0;font-size:12px}"
        ".swatch{display:inline-block;width:10px;height:10px;margin-right:4px}.problem{color:#c62828}</style>"
        f"</head><body><h1>envsync status</h1><p>{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC, "
        f"from each env's dashboard and the local CloudWatch.</p>{''.join(sections)}</body></html>\n"
    )
