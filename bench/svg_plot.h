// A plot of one or more series over time as a standalone SVG file, written by hand (no plotting
// library): axes with ticks, a legend, labelled vertical markers (e.g. handover start and end)
// and shaded spans (e.g. writes refused).
//
// Contract: x and y are in the caller's units (seconds, milliseconds); empty series are skipped;
// the y axis starts at 0. Not thread-safe.
#pragma once

#include <string>
#include <vector>

namespace xdc::bench {

struct PlotSeries {
  std::string label;
  std::string color;  // any SVG colour, e.g. "#1f77b4"
  std::vector<double> x, y;
  bool points = false;  // dots instead of a line
};

struct PlotMarker {
  double x = 0;
  std::string label;
};

struct PlotSpan {
  double x0 = 0, x1 = 0;
  std::string label;
};

struct Plot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  std::vector<PlotMarker> markers;
  std::vector<PlotSpan> spans;
};

// The SVG document.
[[nodiscard]] std::string RenderSvg(const Plot& plot);

}  // namespace xdc::bench
