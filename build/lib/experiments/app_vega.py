"""A Vega-Lite chart widget that updates in place, served offline.

Solara's own ``FigureAltair`` re-embeds the whole chart whenever anything
changes and loads Vega from version-ranged CDN paths (``vega@5``) that the
offline asset bundle does not hold. :class:`VegaChart` instead embeds its
spec once and, when only its data change, replaces the rows of the named
data sets in the live Vega view (``view.change(...).runAsync()``): axes,
legends and the page stay where they are, and a new day costs the browser a
redraw, not a recompilation. The scripts come from the exact versions that
the ``solara-assets`` package installed under ``<prefix>/share/solara/cdn``,
served by Solara at ``/_solara/cdn``.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import ipyvuetify as v
import traitlets

CDN_DIR = Path(sys.prefix) / "share" / "solara" / "cdn"
LIBRARIES = ("vega", "vega-lite", "vega-embed")


def _installed_version(name: str) -> str:
    """``name@version`` of the one copy of ``name`` that solara-assets installed."""
    found = sorted(p.name for p in CDN_DIR.glob(f"{name}@*") if p.name.split("@")[0] == name)
    if not found:
        raise RuntimeError(f"{name} is missing from {CDN_DIR}: reinstall the project (solara-assets provides it)")
    return found[-1]


def library_paths() -> dict[str, str]:
    """Module name -> path of its minified build below Solara's CDN route (without ``.js``, as requirejs wants)."""
    return {name: f"{_installed_version(name)}/build/{name}.min" for name in LIBRARIES}


# The browser side: load Vega once through the page's requirejs, embed on a new
# spec, and on new data swap the rows of each named data set, at most once per
# animation frame (updates that arrive faster are merged, the last one wins).
# Plain promises, no async/await: ipyvue's template loader does not parse them.
TEMPLATE = """
<template>
  <div ref="plot" :class="css_class"></div>
</template>
<script>
module.exports = {
  mounted() {
    this.ready = this.loadVega().then(() => this.embed());
  },
  beforeDestroy() {
    if (this.view) { this.view.finalize(); }
  },
  watch: {
    spec() { this.ready = this.ready.then(() => this.embed()); },
    datasets() { this.scheduleUpdate(); },
  },
  methods: {
    loadVega() {
      const base = (window.solara && window.solara.cdn) || "./_solara/cdn";
      const paths = {};
      for (const [name, path] of Object.entries(this.libraries)) { paths[name] = base + "/" + path; }
      window.requirejs.config({ paths: paths });
      return new Promise((resolve, reject) => {
        window.requirejs(["vega", "vega-embed"], (vega, vegaEmbed) => {
          this.vega = vega;
          this.vegaEmbed = vegaEmbed;
          resolve();
        }, reject);
      });
    },
    embed() {
      if (this.view) { this.view.finalize(); this.view = null; }
      // The first rows go in with the spec, so Vega never lays out an empty chart.
      const spec = Object.assign({}, this.spec, { datasets: this.datasets });
      return this.vegaEmbed(this.$refs.plot, spec, { actions: false, renderer: "canvas" }).then((result) => {
        this.view = result.view;
      });
    },
    scheduleUpdate() {
      if (this.frameRequested) { return; }
      this.frameRequested = true;
      window.requestAnimationFrame(() => { this.frameRequested = false; this.ready.then(() => this.applyData()); });
    },
    applyData() {
      if (!this.view) { return; }
      for (const [name, rows] of Object.entries(this.datasets)) {
        this.view.change(name, this.vega.changeset().remove(() => true).insert(rows));
      }
      // resize(): legends and facets grow with the data, so lay the chart out again.
      this.view.resize().runAsync();
    },
  },
};
</script>
"""


class VegaChart(v.VuetifyTemplate):
    """A Vega-Lite ``spec`` whose named data sets (``datasets``: name -> rows) can change in place."""

    template = traitlets.Unicode(TEMPLATE).tag(sync=True)
    spec = traitlets.Dict().tag(sync=True)
    datasets = traitlets.Dict().tag(sync=True)
    libraries = traitlets.Dict().tag(sync=True)
    css_class = traitlets.Unicode("").tag(sync=True)


def json_number(value: float) -> float | None:
    """A number JSON can carry: NaN and infinities become null (a gap in the line)."""
    value = float(value)
    return value if math.isfinite(value) else None
