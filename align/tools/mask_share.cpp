// starganv2-mask-share: how much of the blend mask falls outside the face (issue 26), for the
// canonical template's mask (every face the same shape, as before) and for the face's own mask
// (AlignedFace::shape), measured in the same run on a video or on a synthetic turning head.
//
//   starganv2-mask-share [--video FILE | --turning-head] [--frames N] [--crop-size N]
//                        [--feather F] [--max-yaw DEG] [--dilate-px PX] [--plain-dlib]
//                        [--per-frame] [--png DIR --at I,J,...]
//
// Each frame goes through FaceAligner as the element aligns a file (detection every 5th frame,
// tracking, smoothing). The face is the hull of its jaw line and of its eyebrows raised by 0.6 of
// the brow-to-nose-tip distance, dilated by the feather (in frame pixels): on a video from the
// landmarks fitted on that frame, on the turning head from where the turn takes the frontal
// face's landmarks (ground truth). The share is the mask's weight outside that region over all
// of its weight, in the mask view's 8-bit weights. --dilate-px fixes the dilation instead (the
// issue measured with 20 px); --plain-dlib takes the face from dlib's own pipeline (HOG at full
// resolution, the predictor in its box) instead of the aligner's fit, on frames where HOG finds it. --png writes, for the frames named by --at,
// the frame under each mask (left: template, right: the face's own) with the face region
// outlined in green and mask weight outside it in red.
//
// Exit codes: 0 measured; 1 an input could not be read or no face was found; 2 bad arguments.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "align/tools/mask_check.h"

using namespace starganv2::align;
namespace mc = starganv2::align::mask_check;

namespace {

constexpr const char* kMegamind = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
constexpr const char* kAstronaut = "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";

void usage(std::FILE* to) {
  std::fprintf(to,
               "usage: starganv2-mask-share [--video FILE | --turning-head] [--frames N] [--crop-size N]\n"
               "                            [--feather F] [--max-yaw DEG] [--dilate-px PX] [--plain-dlib]\n"
               "                            [--per-frame] [--png DIR --at I,J,...]\n"
               "Share of the blend mask's weight outside the face, template mask against the face's own.\n"
               "  --video FILE     default %s\n"
               "  --turning-head   astronaut.png turned about a vertical axis (python3-skimage)\n"
               "  --frames N       frames to measure (default: all of the video; 48 for the head)\n"
               "  --crop-size N    aligned crop side (default 256; the element uses the model's)\n"
               "  --feather F      feather in crop widths (default 0.08, the element's)\n"
               "  --max-yaw DEG    the head's largest turn (default 50)\n"
               "  --dilate-px PX   dilate the face by PX pixels instead of the feather\n"
               "  --plain-dlib     the face from dlib's HOG + predictor instead of the aligner's fit\n"
               "  --per-frame      a row per frame\n"
               "  --png DIR --at I,J  images of frames I, J: template mask left, the face's own right\n"
               "exit codes: 0 measured, 1 unreadable input or no face found, 2 bad arguments\n",
               kMegamind);
}

// The frame under `weights`, darkened where they are 0, with the face region outlined in green
// and the weight outside it in red.
cv::Mat overlay(const cv::Mat& bgr, const cv::Mat& weights, const cv::Mat& region) {
  cv::Mat out(bgr.size(), CV_8UC3);
  for (int y = 0; y < bgr.rows; ++y)
    for (int x = 0; x < bgr.cols; ++x) {
      const float w = weights.at<uchar>(y, x) / 255.0f;
      const bool outside = w > 0 && region.at<uchar>(y, x) == 0;
      const cv::Vec3f tint = outside ? cv::Vec3f(0, 0, 255) : cv::Vec3f(255, 0, 255);
      const float k = outside ? 0.3f + 0.6f * w : 0.45f * w;
      const cv::Vec3f p = cv::Vec3f(bgr.at<cv::Vec3b>(y, x)) * (1 - k) + tint * k;
      out.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(p[0]), cv::saturate_cast<uchar>(p[1]),
                                          cv::saturate_cast<uchar>(p[2]));
    }
  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(region.clone(), contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_NONE);
  cv::drawContours(out, contours, -1, cv::Scalar(0, 255, 0), 1);
  return out;
}

struct Summary {
  std::vector<double> shares;
  int worst_frame = -1;
  void add(double s, int frame) {
    if (shares.empty() || s > *std::max_element(shares.begin(), shares.end())) worst_frame = frame;
    shares.push_back(s);
  }
  double mean() const {
    double sum = 0;
    for (double s : shares) sum += s;
    return shares.empty() ? 0 : sum / shares.size();
  }
  double max() const { return shares.empty() ? 0 : *std::max_element(shares.begin(), shares.end()); }
  long over(double bound) const { return std::count_if(shares.begin(), shares.end(), [&](double s) { return s > bound; }); }
};

}  // namespace

int main(int argc, char** argv) try {
  std::string video = kMegamind, png_dir;
  bool head = false, per_frame = false;
  int frames = -1, crop_size = kDefaultCropSize;
  double feather = CompositorOptions{}.feather, max_yaw = 50, dilate_px = -1;
  bool plain = false;
  std::set<int> at;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--video" && has_value) video = argv[++i];
    else if (a == "--turning-head") head = true;
    else if (a == "--frames" && has_value) frames = std::atoi(argv[++i]);
    else if (a == "--crop-size" && has_value) crop_size = std::atoi(argv[++i]);
    else if (a == "--feather" && has_value) feather = std::atof(argv[++i]);
    else if (a == "--max-yaw" && has_value) max_yaw = std::atof(argv[++i]);
    else if (a == "--per-frame") per_frame = true;
    else if (a == "--plain-dlib") plain = true;
    else if (a == "--dilate-px" && has_value) dilate_px = std::atof(argv[++i]);
    else if (a == "--png" && has_value) png_dir = argv[++i];
    else if (a == "--at" && has_value) {
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) at.insert(std::atoi(item.c_str()));
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (frames == 0 || frames < -1 || !(max_yaw >= 0 && max_yaw <= 80) || crop_size < 8 || crop_size > 4096) {
    std::fprintf(stderr, "starganv2-mask-share: --frames must be > 0, --max-yaw in [0, 80], --crop-size 8..4096\n");
    return 2;
  }
  cv::setNumThreads(1);  // what one stream gets in the element; and the figures do not depend on it

  const auto model = ShapeModel::load();
  AlignerOptions options;
  options.crop_size = crop_size;
  FaceAligner aligner(model, options);
  const Compositor compositor(crop_size, PixelFormat::kRGB, {.feather = feather});
  // --plain-dlib: the face from dlib's own pipeline on each frame (HOG at full resolution, the
  // predictor in its box), independent of the aligner's fits.
  dlib::frontal_face_detector hog;
  dlib::shape_predictor predictor;
  if (plain) {
    hog = dlib::get_frontal_face_detector();
    dlib::deserialize(kDefaultShapeModel) >> predictor;
  }
  // The detection on the aligner's face (within half its box), if HOG finds it.
  const auto plain_fit = [&](const cv::Mat& bgr, const FaceBox& near) -> std::optional<Landmarks> {
    cv::Mat gray;
    cv::cvtColor(bgr, gray, cv::COLOR_BGR2GRAY);
    const dlib::cv_image<unsigned char> img(gray);
    const std::vector<dlib::rectangle> boxes = hog(img);
    const auto distance = [&](const dlib::rectangle& r) {
      return cv::norm(cv::Point2d(0.5 * (r.left() + r.right()), 0.5 * (r.top() + r.bottom())) - near.center);
    };
    const auto nearest = std::min_element(boxes.begin(), boxes.end(),
                                          [&](const dlib::rectangle& a, const dlib::rectangle& b) { return distance(a) < distance(b); });
    if (nearest == boxes.end() || distance(*nearest) > 0.5 * near.size) return std::nullopt;
    const dlib::full_object_detection d = predictor(img, *nearest);
    Landmarks l;
    for (int k = 0; k < kNumLandmarks; ++k) l[k] = cv::Point2d(d.part(k).x(), d.part(k).y());
    return l;
  };

  // The frames, one at a time, and (turning head) the true landmarks of each.
  cv::VideoCapture capture;
  double fps = 30;
  cv::Mat astronaut;
  Landmarks frontal{};
  mc::HeadShape shape;
  if (head) {
    astronaut = cv::imread(kAstronaut, cv::IMREAD_COLOR);
    if (astronaut.empty()) {
      std::fprintf(stderr, "starganv2-mask-share: cannot read %s (Debian package python3-skimage)\n", kAstronaut);
      return 1;
    }
    AlignerOptions still = options;
    const std::vector<AlignedFace> faces = FaceAligner(model, still).align(astronaut, PixelFormat::kBGR);
    if (faces.empty()) {
      std::fprintf(stderr, "starganv2-mask-share: no face in %s\n", kAstronaut);
      return 1;
    }
    frontal = faces[0].landmarks;
    shape = mc::head_shape(frontal);
    if (frames < 0) frames = 48;
  } else {
    if (!capture.open(video) || !capture.isOpened()) {
      std::fprintf(stderr, "starganv2-mask-share: cannot open %s\n", video.c_str());
      return 1;
    }
    fps = capture.get(cv::CAP_PROP_FPS) > 0 ? capture.get(cv::CAP_PROP_FPS) : 30;
  }
  if (!png_dir.empty()) std::filesystem::create_directories(png_dir);

  std::printf("starganv2-mask-share: %s, crop %d, feather %.3g; face region: jaw + brows raised 0.6 x brow-to-nose-tip, "
              "dilated by the feather\n",
              head ? "turning head (astronaut.png)" : video.c_str(), crop_size, feather);
  if (per_frame) std::printf("%6s %8s %10s %12s %10s\n", "frame", "yaw", "dilate px", "template %", "face %");
  Summary old_mask, new_mask;
  int measured = 0;
  for (int i = 0; frames < 0 || i < frames; ++i) {
    cv::Mat frame;
    Landmarks truth{};
    double yaw = 0;
    if (head) {
      yaw = mc::clip_yaw(i, frames, max_yaw);
      mc::TurnedHead t = mc::turn_head(astronaut, frontal, shape, yaw);
      frame = std::move(t.frame);
      truth = t.landmarks;
    } else if (!capture.read(frame) || frame.empty()) {
      break;
    }
    const std::vector<AlignedFace> faces = aligner.process(frame, PixelFormat::kBGR, i / fps);
    if (faces.empty()) {
      if (per_frame) std::printf("%6d %8.1f %10s %12s %10s\n", i, yaw, "-", "no face", "");
      continue;
    }
    // The largest face; on the turning head, the one on the head (nearest its true nose).
    const AlignedFace& f = head ? *std::min_element(faces.begin(), faces.end(), [&](const AlignedFace& a, const AlignedFace& b) {
      return cv::norm(a.landmarks[30] - truth[30]) < cv::norm(b.landmarks[30] - truth[30]);
    }) : faces[0];
    std::optional<Landmarks> reference = head ? truth : f.landmarks;
    if (plain && !head) reference = plain_fit(frame, f.box);
    if (!reference) {
      if (per_frame) std::printf("%6d %8.1f %10s %12s %10s\n", i, yaw, "-", "no dlib face", "");
      continue;
    }
    const double dilate = dilate_px >= 0 ? dilate_px : mc::feather_px(*reference, feather);
    const cv::Mat region = mc::face_region(frame.size(), *reference, dilate);
    const cv::Mat w_old = mc::blend_weights(frame.size(), compositor, f.inverse, nullptr);
    const cv::Mat w_new = mc::blend_weights(frame.size(), compositor, f.inverse, &f.shape);
    const double s_old = mc::share_outside(w_old, region), s_new = mc::share_outside(w_new, region);
    old_mask.add(s_old, i);
    new_mask.add(s_new, i);
    ++measured;
    if (per_frame) std::printf("%6d %8.1f %10.1f %12.2f %10.2f\n", i, yaw, dilate, 100 * s_old, 100 * s_new);
    if (!png_dir.empty() && at.count(i)) {
      // Around the face, enlarged to 480 px, with the landmarks the aligner fitted on this frame in
      // yellow on the right.
      const double side = 2.0 * f.box.size;
      const cv::Rect around = cv::Rect(cvRound(f.box.center.x - side / 2), cvRound(f.box.center.y - side / 2),
                                       cvRound(side), cvRound(side)) & cv::Rect(0, 0, frame.cols, frame.rows);
      const double zoom = 480.0 / around.height;
      const auto enlarge = [&](const cv::Mat& m) {
        cv::Mat big;
        cv::resize(m(around), big, {}, zoom, zoom, cv::INTER_CUBIC);
        return big;
      };
      cv::Mat both, left = enlarge(overlay(frame, w_old, region)), right = enlarge(overlay(frame, w_new, region));
      for (const cv::Point2d& p : f.landmarks)
        cv::circle(right, (p - cv::Point2d(around.tl())) * zoom, 2, cv::Scalar(0, 255, 255), cv::FILLED);
      cv::hconcat(left, right, both);
      const std::string name = png_dir + "/" + (head ? "turning-head" : "video") + "-" + std::to_string(i) + ".png";
      cv::imwrite(name, both);
      std::printf("wrote %s (left: template mask, right: the face's own)\n", name.c_str());
    }
  }
  if (measured == 0) {
    std::fprintf(stderr, "starganv2-mask-share: no face found in any frame\n");
    return 1;
  }
  std::printf("frames with a face: %d\n", measured);
  std::printf("%-16s %8s %8s %12s %12s\n", "mask", "mean %", "max %", "worst frame", "frames > 3%");
  std::printf("%-16s %8.2f %8.2f %12d %12ld\n", "template (old)", 100 * old_mask.mean(), 100 * old_mask.max(),
              old_mask.worst_frame, old_mask.over(0.03));
  std::printf("%-16s %8.2f %8.2f %12d %12ld\n", "face's own (new)", 100 * new_mask.mean(), 100 * new_mask.max(),
              new_mask.worst_frame, new_mask.over(0.03));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "starganv2-mask-share: %s\n", e.what());
  return 1;
}
