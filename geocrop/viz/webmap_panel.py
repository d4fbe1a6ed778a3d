"""The web page's panel (`geocrop.viz.webmap`): the JavaScript that switches between the class, confidence
and uncertainty layers, sets their opacity, answers a click with the pixel's class, confidence,
uncertainty and probabilities from the grid embedded in the page (`b64`), and reads the URL fragment
(``#layer=...&opacity=...&query=LAT,LON``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import folium
import numpy as np
import numpy.typing as npt
from branca.element import MacroElement
from jinja2 import Template

__all__ = ["add_panel", "b64"]


_PANEL_JS = r"""
(function () {
  var map = __MAP__, G = __CONFIG__;
  var layers = {classes: __CLASSES__, confidence: __CONFIDENCE__, uncertainty: __UNCERTAINTY__};
  function decode(b64) {
    if (!b64) { return null; }
    var raw = atob(b64), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  var grid = {classes: decode(G.classes), confidence: decode(G.confidence),
              uncertainty: decode(G.uncertainty), probs: decode(G.probs)};
  var names = {}, colours = {};
  G.legend.forEach(function (c) { names[c.value] = c.name; colours[c.value] = c.color; });
  function esc(t) { var d = document.createElement("div"); d.textContent = String(t); return d.innerHTML; }
  var panel = L.control({position: "topright"});
  panel.onAdd = function () {
    var div = L.DomUtil.create("div", "geocrop-panel");
    div.id = "geocrop-panel";
    div.style.cssText = "background:rgba(255,255,255,0.92);padding:6px 10px;border:1px solid #999;" +
      "border-radius:4px;font:13px/1.6 sans-serif";
    var html = "<b>Layer</b><br>";
    G.layers.forEach(function (l) {
      html += '<label><input type="radio" name="geocrop-layer" value="' + l[0] + '"' +
        (l[0] === "classes" ? " checked" : "") + "> " + esc(l[1]) + "</label><br>";
    });
    html += '<label>Opacity <input id="geocrop-opacity" type="range" min="0" max="100" step="5" value="' +
      Math.round(100 * G.opacity) + '"></label> <span id="geocrop-opacity-value">' +
      Math.round(100 * G.opacity) + " %</span>";
    div.innerHTML = html;
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    return div;
  };
  panel.addTo(map);
  function show(name) {
    Object.keys(layers).forEach(function (k) {
      if (!layers[k]) { return; }
      if (k === name) { map.addLayer(layers[k]); } else { map.removeLayer(layers[k]); }
      document.querySelectorAll(".geocrop-legend-" + k).forEach(function (el) {
        el.style.display = k === name ? "block" : "none";
      });
    });
    document.body.setAttribute("data-geocrop-layer", name);
  }
  function setOpacity(value) {
    Object.keys(layers).forEach(function (k) { if (layers[k]) { layers[k].setOpacity(value); } });
    document.getElementById("geocrop-opacity-value").textContent = Math.round(100 * value) + " %";
  }
  document.querySelectorAll('input[name="geocrop-layer"]').forEach(function (el) {
    el.addEventListener("change", function (e) { if (e.target.checked) { show(e.target.value); } });
  });
  var slider = document.getElementById("geocrop-opacity");
  slider.addEventListener("input", function (e) { setOpacity(Number(e.target.value) / 100); });
  function pct(v) { return v === 255 ? "n/a" : v + " %"; }
  map.on("click", function (e) {
    var p = L.CRS.EPSG3857.project(e.latlng);
    var col = Math.floor((p.x - G.left) / G.xres), row = Math.floor((G.top - p.y) / G.yres);
    var content;
    if (col < 0 || row < 0 || col >= G.width || row >= G.height) {
      content = "outside the crop map";
    } else {
      var i = row * G.width + col, v = grid.classes[i];
      if (v === 255) {
        content = "no data (masked, outside the area, or never clear)";
      } else {
        content = '<b class="geocrop-query-class"><span style="display:inline-block;width:12px;' +
          "height:12px;border:1px solid #555;background:" + colours[v] + '"></span> ' +
          esc(names[v] === undefined ? "value " + v : names[v]) + "</b><br>" +
          '<span class="geocrop-query-confidence">confidence ' + pct(grid.confidence[i]) + "</span><br>" +
          '<span class="geocrop-query-uncertainty">uncertainty ' + pct(grid.uncertainty[i]) + "</span>";
        if (grid.probs) {
          var n = G.width * G.height, rows = G.legend.map(function (c, k) {
            return [c.name, grid.probs[k * n + i]];
          });
          rows.sort(function (a, b) { return b[1] - a[1]; });
          content += '<table class="geocrop-query-probs" style="margin-top:4px">' + rows.map(function (r) {
            return "<tr><td>" + esc(r[0]) + '</td><td style="text-align:right">' + pct(r[1]) + "</td></tr>";
          }).join("") + "</table>";
        }
      }
    }
    L.popup().setLatLng(e.latlng).setContent('<div class="geocrop-query">' + content + "</div>").openOn(map);
  });
  var hash = {};
  window.location.hash.replace(/^#/, "").split("&").forEach(function (part) {
    var kv = part.split("=");
    if (kv[0]) { hash[decodeURIComponent(kv[0])] = decodeURIComponent(kv[1] || ""); }
  });
  if (hash.layer && layers[hash.layer]) {
    var radio = document.querySelector('input[name="geocrop-layer"][value="' + hash.layer + '"]');
    radio.checked = true;
    radio.dispatchEvent(new Event("change"));
  }
  if (hash.opacity) {
    slider.value = Math.round(100 * Number(hash.opacity));
    slider.dispatchEvent(new Event("input"));
  }
  if (hash.query) {
    var ll = hash.query.split(",").map(Number);
    map.fire("click", {latlng: L.latLng(ll[0], ll[1])});
  }
})();
"""


class _Script(MacroElement):
    """Raw JavaScript run after the map and its layers exist (a child of the map, rendered after them)."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "GeocropScript"
        self.code = code


def b64(array: npt.NDArray[np.uint8]) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def add_panel(
    fmap: folium.Map, config: Mapping[str, Any], class_layer: Any, value_layers: Mapping[str, Any] | None
) -> None:
    """Add the panel (layer switch, opacity, pixel popups) to ``fmap``: `_PANEL_JS` with the page's grid
    and legend (``config``) and the names of the class layer and the confidence/uncertainty layers."""
    code = (
        _PANEL_JS.replace("__MAP__", fmap.get_name())
        .replace("__CONFIG__", json.dumps(config))
        .replace("__CLASSES__", class_layer.get_name())
        .replace("__CONFIDENCE__", value_layers["confidence"].get_name() if value_layers else "null")
        .replace("__UNCERTAINTY__", value_layers["uncertainty"].get_name() if value_layers else "null")
    )
    _Script(code).add_to(fmap)
