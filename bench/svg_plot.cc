#include "bench/svg_plot.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace xdc::bench {
namespace {

// Canvas and margins, in SVG pixels.
constexpr double kWidth = 900, kHeight = 480;
constexpr double kLeft = 70, kRight = 180, kTop = 40, kBottom = 50;
constexpr int kTicks = 6;
constexpr double kPointRadius = 1.5;

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) covering `range` in about kTicks steps.
double TickStep(double range) {
  if (!(range > 0)) return 1;
  const double raw = range / kTicks;
  const double power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

}  // namespace

std::string RenderSvg(const Plot& plot) {
  double x_min = INFINITY, x_max = -INFINITY, y_max = 0;
  for (const PlotSeries& s : plot.series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      x_min = std::min(x_min, s.x[i]);
      x_max = std::max(x_max, s.x[i]);
      y_max = std::max(y_max, s.y[i]);
    }
  }
  for (const PlotMarker& m : plot.markers) {
    x_min = std::min(x_min, m.x);
    x_max = std::max(x_max, m.x);
  }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1;
  if (x_max <= x_min) x_max = x_min + 1;
  const double y_step = TickStep(y_max > 0 ? y_max : 1);
  y_max = std::ceil((y_max > 0 ? y_max : 1) / y_step) * y_step;
  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + plot_h - std::min(y, y_max) / y_max * plot_h; };

  std::string svg = absl::StrFormat(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">)"
      "\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"22\" font-size=\"15\">%s</text>\n", kLeft,
                        Escape(plot.title));
  for (const PlotSpan& span : plot.spans) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%.1f\" y=\"%g\" width=\"%.1f\" height=\"%g\" fill=\"#f4b6b6\" "
                          "opacity=\"0.5\"><title>%s</title></rect>\n",
                          px(span.x0), kTop, std::max(1.0, px(span.x1) - px(span.x0)), plot_h,
                          Escape(span.label));
  }
  // Axes, grid and ticks.
  absl::StrAppendFormat(&svg, "<path d=\"M%g %g V%g H%g\" stroke=\"black\" fill=\"none\"/>\n",
                        kLeft, kTop, kTop + plot_h, kLeft + plot_w);
  for (double y = 0; y <= y_max + y_step / 2; y += y_step) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                          "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                          kLeft, kLeft + plot_w, py(y), py(y), kLeft - 6, py(y) + 4, y);
  }
  const double x_step = TickStep(x_max - x_min);
  for (double x = std::ceil(x_min / x_step) * x_step; x <= x_max; x += x_step) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"black\"/>"
                          "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n",
                          px(x), px(x), kTop + plot_h, kTop + plot_h + 5, px(x), kTop + plot_h + 18,
                          x);
  }
  absl::StrAppendFormat(&svg, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                        kLeft + plot_w / 2, kHeight - 10, Escape(plot.x_label));
  absl::StrAppendFormat(&svg,
                        "<text transform=\"translate(18 %g) rotate(-90)\" "
                        "text-anchor=\"middle\">%s</text>\n",
                        kTop + plot_h / 2, Escape(plot.y_label));
  // Series.
  double legend_y = kTop + 10;
  for (const PlotSeries& s : plot.series) {
    if (s.x.empty()) continue;
    if (s.points) {
      absl::StrAppendFormat(&svg, "<g fill=\"%s\">", s.color);
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        absl::StrAppendFormat(&svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%g\"/>", px(s.x[i]),
                              py(s.y[i]), kPointRadius);
      }
      svg += "</g>\n";
    } else {
      std::string d;
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
        absl::StrAppendFormat(&d, "%s%.1f %.1f", i == 0 ? "M" : " L", px(s.x[i]), py(s.y[i]));
      }
      absl::StrAppendFormat(
          &svg, "<path d=\"%s\" stroke=\"%s\" stroke-width=\"1.5\" fill=\"none\"/>\n", d, s.color);
    }
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                          "<text x=\"%g\" y=\"%g\">%s</text>\n",
                          kWidth - kRight + 15, legend_y - 10, s.color, kWidth - kRight + 32,
                          legend_y, Escape(s.label));
    legend_y += 20;
  }
  double marker_y = kTop + 12;
  for (const PlotMarker& m : plot.markers) {
    absl::StrAppendFormat(&svg,
                          "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"#444\" "
                          "stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%g\" "
                          "font-size=\"11\">%s</text>\n",
                          px(m.x), px(m.x), kTop, kTop + plot_h, px(m.x) + 3, marker_y,
                          Escape(m.label));
    marker_y += 14;
  }
  for (const PlotSpan& span : plot.spans) {
    absl::StrAppendFormat(&svg,
                          "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" fill=\"#f4b6b6\"/>"
                          "<text x=\"%g\" y=\"%g\">%s</text>\n",
                          kWidth - kRight + 15, legend_y - 10, kWidth - kRight + 32, legend_y,
                          Escape(span.label));
    legend_y += 20;
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace xdc::bench
