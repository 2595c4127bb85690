#include "curves.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include "data/augment.h"

namespace starganv2 {

namespace {

struct PanelSpec {
  const char* title;
  std::vector<std::string> keys;  // exact keys, or "prefix*" for every key with that prefix
  bool points;                    // few values (evaluations): marked, not binned
};

const std::vector<PanelSpec>& panels() {
  static const std::vector<PanelSpec> p = {
      {"D loss (total)", {"D/latent_total", "D/ref_total"}, false},
      {"G loss (total)", {"G/latent_total", "G/ref_total"}, false},
      {"D terms, latent-guided", {"D/latent_real", "D/latent_fake", "D/latent_reg"}, false},
      {"G terms, latent-guided", {"G/latent_adv", "G/latent_sty", "G/latent_ds", "G/latent_cyc"}, false},
      {"warm-up reconstruction (--recon-warmup)", {"W/recon"}, false},
      {"diversity (pixels in [0,1]; 0 = one style)", {"eval/diversity/*"}, true},
      {"face found by dlib (rate)", {"eval/face_found/*"}, true},
      {"pose error (crop widths)", {"eval/pose_error/*"}, true},
      {"upsampling seams (1 = no grid)", {"eval/seams/*"}, true},
      {"FID (lower is better)", {"eval/FID_latent/mean", "eval/FID_reference/mean"}, true},
      {"LPIPS (diversity)", {"eval/LPIPS_latent/mean", "eval/LPIPS_reference/mean"}, true},
  };
  return p;
}

using Series = std::vector<std::pair<double, double>>;  // (step, value)

// Line colours (BGR), distinct on white.
const cv::Scalar kColours[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214},
                               {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {34, 189, 188}};

constexpr int kPanelW = 520, kPanelH = 300;
constexpr int kLeft = 62, kRight = 14, kTop = 48, kBottom = 38;  // plot area inside a panel
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

// 1, 2 or 5 times a power of ten, about span / 5.
double tick_step(double span) {
  const double raw = span / 5;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

std::string number_label(double v, double step) {
  char text[32];
  if (std::abs(v) < step * 1e-6) v = 0;
  if (std::abs(v) >= 1e5 || (step < 1e-3 && v != 0))
    std::snprintf(text, sizeof text, "%.2g", v);
  else if (step >= 1)
    std::snprintf(text, sizeof text, "%.0f", v);
  else
    std::snprintf(text, sizeof text, "%.*f", static_cast<int>(std::ceil(-std::log10(step))), v);
  return text;
}

void text(cv::Mat& img, const std::string& s, cv::Point at, double scale = 0.42, cv::Scalar colour = {40, 40, 40}) {
  cv::putText(img, s, at, kFont, scale, colour, 1, cv::LINE_AA);
}

int text_width(const std::string& s, double scale = 0.42) {
  int base = 0;
  return cv::getTextSize(s, kFont, scale, 1, &base).width;
}

// Loss lines are logged every few iterations and are noisy: averaged per pixel column, so that a
// long run draws as its trend, not as a solid band.
Series binned(const Series& s, double x0, double x1, int width) {
  if (static_cast<int>(s.size()) <= width) return s;
  std::vector<double> sum(width, 0), xs(width, 0);
  std::vector<int> n(width, 0);
  for (const auto& [x, y] : s) {
    const int b = std::clamp(static_cast<int>((x - x0) / (x1 - x0) * (width - 1)), 0, width - 1);
    sum[b] += y;
    xs[b] += x;
    ++n[b];
  }
  Series out;
  for (int b = 0; b < width; ++b)
    if (n[b]) out.emplace_back(xs[b] / n[b], sum[b] / n[b]);
  return out;
}

void draw_panel(cv::Mat& img, cv::Rect area, const PanelSpec& spec, const std::vector<std::pair<std::string, Series>>& lines,
                double x0, double x1) {
  const cv::Rect plot(area.x + kLeft, area.y + kTop, area.width - kLeft - kRight, area.height - kTop - kBottom);
  std::vector<std::pair<std::string, Series>> drawn;
  double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
  for (const auto& [name, s] : lines) {
    Series b = spec.points ? s : binned(s, x0, x1, plot.width);
    for (const auto& [x, y] : b) {
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
    drawn.emplace_back(name, std::move(b));
  }
  if (!(y1 > y0)) {  // one value, or all equal
    const double pad = std::abs(y0) > 0 ? std::abs(y0) * 0.1 : 0.5;
    y0 -= pad;
    y1 += pad;
  }
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;

  text(img, spec.title, {area.x + 8, area.y + 18}, 0.5, {0, 0, 0});
  // Legend: one row under the title, each name in its line's colour.
  int lx = area.x + 8;
  for (size_t i = 0; i < drawn.size(); ++i) {
    const cv::Scalar colour = kColours[i % std::size(kColours)];
    cv::line(img, {lx, area.y + 34}, {lx + 16, area.y + 34}, colour, 2, cv::LINE_AA);
    text(img, drawn[i].first, {lx + 20, area.y + 38}, 0.4, colour);
    lx += 20 + text_width(drawn[i].first, 0.4) + 14;
  }

  auto px = [&](double x) { return plot.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (plot.width - 1))); };
  auto py = [&](double y) { return plot.y + plot.height - 1 - static_cast<int>(std::lround((y - y0) / (y1 - y0) * (plot.height - 1))); };
  // Grid and tick labels.
  const double ys = tick_step(y1 - y0);
  for (double y = std::ceil(y0 / ys) * ys; y <= y1; y += ys) {
    cv::line(img, {plot.x, py(y)}, {plot.x + plot.width - 1, py(y)}, {225, 225, 225}, 1);
    const std::string label = number_label(y, ys);
    text(img, label, {plot.x - 6 - text_width(label, 0.38), py(y) + 4}, 0.38);
  }
  const double xs = tick_step(x1 - x0);
  for (double x = std::ceil(x0 / xs) * xs; x <= x1; x += xs) {
    cv::line(img, {px(x), plot.y}, {px(x), plot.y + plot.height - 1}, {225, 225, 225}, 1);
    const std::string label = number_label(x, xs);
    text(img, label, {px(x) - text_width(label, 0.38) / 2, plot.y + plot.height + 15}, 0.38);
  }
  cv::rectangle(img, plot, {120, 120, 120}, 1);
  text(img, "iteration", {plot.x + plot.width / 2 - text_width("iteration", 0.4) / 2, plot.y + plot.height + 32}, 0.4);

  cv::Mat roi = img(plot);
  for (size_t i = 0; i < drawn.size(); ++i) {
    const cv::Scalar colour = kColours[i % std::size(kColours)];
    const Series& s = drawn[i].second;
    std::vector<cv::Point> pts;
    for (const auto& [x, y] : s) pts.emplace_back(px(x) - plot.x, py(y) - plot.y);
    cv::polylines(roi, pts, false, colour, spec.points ? 2 : 1, cv::LINE_AA);
    if (spec.points)
      for (const cv::Point& p : pts) cv::circle(roi, p, 3, colour, cv::FILLED, cv::LINE_AA);
  }
}

}  // namespace

cv::Mat draw_curves(const std::string& log_text) {
  std::map<std::string, Series> series;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0;
  std::istringstream lines(log_text);
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("step") || !j["step"].is_number()) continue;
    const double step = j["step"].get<double>();
    for (const auto& [k, v] : j.items())
      if (v.is_number() && std::isfinite(v.get<double>())) series[k].emplace_back(step, v.get<double>());
    x0 = std::min(x0, step);
    x1 = std::max(x1, step);
  }
  if (!(x1 >= x0)) return {};
  // From iteration 0, so that the first evaluations and a run's start are where they belong.
  x0 = std::min(x0, 0.0);
  if (x1 == x0) x1 += 1;

  std::vector<std::pair<const PanelSpec*, std::vector<std::pair<std::string, Series>>>> shown;
  for (const PanelSpec& spec : panels()) {
    std::vector<std::pair<std::string, Series>> lines_of;
    for (const std::string& k : spec.keys) {
      if (!k.empty() && k.back() == '*') {
        const std::string prefix = k.substr(0, k.size() - 1);
        for (const auto& [name, s] : series)
          if (name.rfind(prefix, 0) == 0) lines_of.emplace_back(name.substr(prefix.size()), s);
      } else if (const auto it = series.find(k); it != series.end()) {
        // "eval/FID_latent/mean" -> "FID_latent", "D/latent_total" -> "latent_total"
        std::string name = k.rfind("eval/", 0) == 0 ? k.substr(5, k.rfind('/') - 5) : k.substr(k.find('/') + 1);
        lines_of.emplace_back(name, it->second);
      }
    }
    if (!lines_of.empty()) shown.emplace_back(&spec, std::move(lines_of));
  }
  if (shown.empty()) return {};
  const int cols = shown.size() > 1 ? 2 : 1, rows = static_cast<int>((shown.size() + cols - 1) / cols);
  cv::Mat img(rows * kPanelH, cols * kPanelW, CV_8UC3, cv::Scalar(255, 255, 255));
  for (size_t i = 0; i < shown.size(); ++i) {
    const cv::Rect area(static_cast<int>(i % cols) * kPanelW, static_cast<int>(i / cols) * kPanelH, kPanelW, kPanelH);
    draw_panel(img, area, *shown[i].first, shown[i].second, x0, x1);
  }
  return img;
}

bool write_curves(const std::filesystem::path& log, const std::filesystem::path& png) {
  std::ifstream f(log);
  std::stringstream text;
  text << f.rdbuf();
  const cv::Mat bgr = draw_curves(text.str());
  if (bgr.empty()) return false;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const at::Tensor image = at::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, at::kByte).permute({2, 0, 1}).to(at::kFloat) / 255;
  write_png(png, image);
  return true;
}

}  // namespace starganv2
