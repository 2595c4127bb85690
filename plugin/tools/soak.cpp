// starganv2-soak: pushes many frames with faces through the element's worker (plugin::Processor,
// the same pipeline the element runs) and reports the resident memory every 1,000 frames, to find
// leaks that only show over a long stream. Exit 0 when the memory after the last frame is within
// --max-growth percent of the memory after the first 1,000 (the warm-up: caches, allocator pools),
// 1 otherwise, 2 on bad input.
//
//   starganv2-soak [--frames 10000] [--video Megamind.avi] [--checkpoint demo model] [--max-growth 5]
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "processor.h"
#include "tools/resident_memory.h"

namespace sp = starganv2::plugin;

int main(int argc, char** argv) {
  long frames = 10000;
  double max_growth = 5.0;
  std::string video = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
  std::string checkpoint = STARGANV2_SOURCE_ROOT "/examples/models/demo-faces-64.safetensors";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--frames" && has_value) frames = std::atol(argv[++i]);
    else if (a == "--video" && has_value) video = argv[++i];
    else if (a == "--checkpoint" && has_value) checkpoint = argv[++i];
    else if (a == "--max-growth" && has_value) max_growth = std::atof(argv[++i]);
    else {
      std::cerr << "usage: starganv2-soak [--frames N] [--video FILE] [--checkpoint FILE] [--max-growth PERCENT]\n";
      return 2;
    }
  }
  if (frames < 2000) {
    std::cerr << "starganv2-soak: --frames must be at least 2000 (the first 1000 are the warm-up)\n";
    return 2;
  }
  // A loop of the video's first frames, played forwards then backwards so that faces move
  // smoothly and the tracker keeps following them, as in a long live stream.
  std::vector<cv::Mat> clip;
  {
    cv::VideoCapture cap(video);
    cv::Mat f;
    while (clip.size() < 60 && cap.read(f)) clip.push_back(f.clone());
  }
  if (clip.size() < 2) {
    std::cerr << "starganv2-soak: cannot read frames from " << video << "\n";
    return 2;
  }
  try {
    sp::EngineOptions engine;
    engine.checkpoint = checkpoint;
    engine.device = "cpu";
    sp::Processor processor(engine, sp::AlignOptions{});
    processor.set_style(sp::StyleOptions{.domain = "female", .seed = 7});
    processor.set_stream(sp::StreamOptions{.live = false, .overlap = true});
    std::printf("%8s %10s %10s %8s\n", "frames", "rss_mib", "ms/frame", "faces");
    double base = 0;
    long faces = 0;
    auto t0 = std::chrono::steady_clock::now();
    const long period = static_cast<long>(clip.size()) * 2 - 2;
    for (long n = 1; n <= frames; ++n) {
      const long k = (n - 1) % period;
      cv::Mat frame = clip[k < static_cast<long>(clip.size()) ? k : period - k].clone();
      const sp::FrameView view{frame.data, frame.cols, frame.rows, static_cast<int>(frame.step), sp::PixelLayout::kBGR};
      faces += static_cast<long>(processor.process(view, sp::Mode::kFace, sp::View::kMerged, n / 30.0).faces.size());
      if (n % 1000 == 0) {
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 1000;
        const double rss = sp::resident_mib();
        if (n == 1000) base = rss;
        std::printf("%8ld %10.1f %10.2f %8ld\n", n, rss, ms, faces);
        std::fflush(stdout);
        faces = 0;
        t0 = std::chrono::steady_clock::now();
      }
    }
    const double growth = 100.0 * (sp::resident_mib() - base) / base;
    std::printf("growth after the first 1000 frames: %+.2f %% (limit %.1f %%)\n", growth, max_growth);
    return growth <= max_growth ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "starganv2-soak: " << e.what() << "\n";
    return 2;
  }
}
