#include "align/detector.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/imgproc.hpp>

namespace starganv2::align {

cv::Rect2d FaceBox::bounds() const {
  const double a = angle_deg * std::numbers::pi / 180.0;
  const double half = 0.5 * size * (std::abs(std::cos(a)) + std::abs(std::sin(a)));
  return {center.x - half, center.y - half, 2 * half, 2 * half};
}

struct Detector::Impl {
  dlib::frontal_face_detector hog = dlib::get_frontal_face_detector();

  // HOG on a grey 8-bit image; boxes in that image's pixels.
  std::vector<dlib::rect_detection> run(const cv::Mat& gray, double threshold) {
    std::vector<dlib::rect_detection> dets;
    // cv_image wraps without copying; the detector only reads.
    hog(dlib::cv_image<unsigned char>(gray), dets, threshold);
    return dets;
  }
};

namespace {

// Smallest frame side worth scanning: the HOG window is 80 px, and a 4x finer retry is the most
// any pass zooms in.
constexpr int kMinSide = 20;

FaceBox to_box(const dlib::rect_detection& d) {
  const dlib::rectangle& r = d.rect;
  return {{0.5 * (r.left() + r.right()), 0.5 * (r.top() + r.bottom())}, static_cast<double>(r.width()), 0.0,
          d.detection_confidence};
}

cv::Size pass_size(cv::Size size, double scale) {
  return {std::max(1, static_cast<int>(std::lround(size.width * scale))),
          std::max(1, static_cast<int>(std::lround(size.height * scale)))};
}

// `gray` resampled so that its width is `scale` times what it was.
cv::Mat rescale(const cv::Mat& gray, double scale) {
  if (std::abs(scale - 1.0) < 1e-9) return gray;
  cv::Mat out;
  cv::resize(gray, out, pass_size(gray.size(), scale), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

}  // namespace

Detector::Detector(DetectorOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (options_.max_width < 0 || options_.retry_max_width < 0)
    throw AlignError("DetectorOptions: max_width and retry_max_width must be >= 0");
  if (options_.upsample < 0 || options_.upsample > 3)
    throw AlignError("DetectorOptions: upsample must be 0..3");
  if (options_.max_faces < 1) throw AlignError("DetectorOptions: max_faces must be >= 1");
  for (double a : options_.retry_angles_deg)
    if (!std::isfinite(a) || std::abs(a) > 180) throw AlignError("DetectorOptions: retry angles must be in [-180, 180]");
}

Detector::~Detector() = default;
Detector::Detector(Detector&&) noexcept = default;
Detector& Detector::operator=(Detector&&) noexcept = default;

int Detector::num_passes() const {
  return 1 + static_cast<int>(options_.retry_angles_deg.size()) + (options_.retry_max_width > 0 ? 1 : 0);
}

std::vector<FaceBox> Detector::detect(const cv::Mat& frame, PixelFormat format) {
  check_frame(frame, format);
  if (frame.cols < kMinSide || frame.rows < kMinSide) return {};
  for (int i = 0; i < num_passes(); ++i) {
    std::vector<FaceBox> faces = detect_pass(frame, format, i);
    if (!faces.empty()) return faces;
  }
  return {};
}

std::vector<FaceBox> Detector::detect_pass(const cv::Mat& frame, PixelFormat format, int index) {
  return detect_pass(prepare(frame, format, index), index);
}

double Detector::pass_scale(int index, int frame_width) const {
  if (index < 0 || index >= num_passes())
    throw AlignError("Detector: pass " + std::to_string(index) + " out of range");
  double scale =
      options_.max_width > 0 ? std::min(1.0, static_cast<double>(options_.max_width) / frame_width) : 1.0;
  scale *= std::pow(2.0, options_.upsample);
  if (index == static_cast<int>(options_.retry_angles_deg.size()) + 1) {
    const double finer = std::min(2 * scale, static_cast<double>(options_.retry_max_width) / frame_width);
    return finer < 1.25 * scale ? 0.0 : finer;  // nothing finer allowed than what pass 0 saw
  }
  return scale;
}

DetectionImage Detector::prepare(const cv::Mat& frame, PixelFormat format, int index) const {
  check_frame(frame, format);
  DetectionImage image;
  image.frame_size = frame.size();
  if (frame.cols < kMinSide || frame.rows < kMinSide) return image;
  const double scale = pass_scale(index, frame.cols);
  if (scale <= 0) return image;
  image.scale = scale;
  if (scale < 1) {
    // Shrink the colour frame first, then take the luma of the small copy: one pass over the
    // frame instead of a full-size grey image that is then read again.
    // A whole factor (1920 -> 640) averages whole blocks, several times faster than cv::resize's
    // area path for it (block_mean).
    cv::Mat small;
    const cv::Size size = pass_size(frame.size(), scale);
    const int k = static_cast<int>(std::lround(1.0 / scale));
    if (k > 1 && size.width * k == frame.cols && size.height * k == frame.rows) block_mean(frame, k, small);
    else cv::resize(frame, small, size, 0, 0, cv::INTER_AREA);
    image.gray = to_gray(small, format);
  } else {
    image.gray = rescale(to_gray(frame, format), scale);
  }
  return image;
}

std::vector<FaceBox> Detector::detect_pass(const DetectionImage& image, int index) {
  if (image.gray.empty()) {
    if (index < 0 || index >= num_passes())
      throw AlignError("Detector: pass " + std::to_string(index) + " out of range");
    return {};
  }
  const double scale = pass_scale(index, image.frame_size.width);
  if (scale <= 0) return {};
  double angle = 0;
  const int num_angles = static_cast<int>(options_.retry_angles_deg.size());
  if (index >= 1 && index <= num_angles) angle = options_.retry_angles_deg[index - 1];

  cv::Mat img = std::abs(scale - image.scale) < 1e-9 ? image.gray
                                                     : rescale(image.gray, scale / image.scale);
  // Rotated passes: turn the copy by `angle` into a canvas large enough to keep every corner;
  // an upright face found there was turned by -angle in the frame.
  cv::Matx23d to_img(1, 0, 0, 0, 1, 0);
  if (angle != 0) {
    const cv::Point2d c(0.5 * (img.cols - 1), 0.5 * (img.rows - 1));
    cv::Mat R = cv::getRotationMatrix2D(c, angle, 1.0);
    const double ca = std::abs(R.at<double>(0, 0)), sa = std::abs(R.at<double>(0, 1));
    const cv::Size out(static_cast<int>(std::ceil(img.cols * ca + img.rows * sa)),
                       static_cast<int>(std::ceil(img.cols * sa + img.rows * ca)));
    R.at<double>(0, 2) += 0.5 * (out.width - 1) - c.x;
    R.at<double>(1, 2) += 0.5 * (out.height - 1) - c.y;
    to_img = cv::Matx23d(R);
    cv::Mat rotated;
    cv::warpAffine(img, rotated, R, out, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    img = rotated;
  }
  const cv::Matx23d from_img = invert_affine(to_img);

  std::vector<FaceBox> faces;
  for (const dlib::rect_detection& d : impl_->run(img, options_.threshold)) {
    FaceBox box = to_box(d);
    const cv::Point2d p = apply(from_img, box.center);
    // Detection copy pixel -> frame pixel (cv::resize's centre convention).
    box.center = {(p.x + 0.5) / scale - 0.5, (p.y + 0.5) / scale - 0.5};
    box.size /= scale;
    box.angle_deg = -angle;
    if (box.size >= options_.min_face_size) faces.push_back(box);
  }
  std::stable_sort(faces.begin(), faces.end(), [](const FaceBox& a, const FaceBox& b) { return a.size > b.size; });
  if (static_cast<int>(faces.size()) > options_.max_faces) faces.resize(options_.max_faces);
  return faces;
}

namespace {
// verify(): the box drawn at 96 px in a 160 px patch. HOG's 80 px window then meets it on the
// first pyramid levels, and the patch is too small for anything else to fit.
constexpr double kVerifyBox = 96, kVerifyPatch = 160;
}  // namespace

namespace {

// Frame pixel -> verify patch pixel: `box` upright, kVerifyBox wide, in the patch's middle.
bool verify_transform(const FaceBox& box, cv::Matx23d& M) {
  if (!(box.size > 1) || !std::isfinite(box.center.x + box.center.y) || !std::isfinite(box.angle_deg)) return false;
  M = cv::getRotationMatrix2D(box.center, -box.angle_deg, kVerifyBox / box.size);
  M(0, 2) += 0.5 * (kVerifyPatch - 1) - box.center.x;
  M(1, 2) += 0.5 * (kVerifyPatch - 1) - box.center.y;
  return true;
}

}  // namespace

cv::Mat Detector::verify_patch(const cv::Mat& frame, PixelFormat format, const FaceBox& box) {
  check_frame(frame, format);
  cv::Matx23d M;
  if (frame.empty() || !verify_transform(box, M)) return {};
  const int side = static_cast<int>(kVerifyPatch);
  return warp_gray(frame, format, M, {side, side}, cv::BORDER_REPLICATE);
}

cv::Mat Detector::verify_patch(const cv::Mat& gray, const cv::Matx23d& from_frame, const FaceBox& box) {
  if (!gray.empty() && gray.type() != CV_8UC1) throw AlignError("Detector::verify_patch: the image must be CV_8UC1");
  cv::Matx23d M;
  if (gray.empty() || !verify_transform(box, M)) return {};
  const int side = static_cast<int>(kVerifyPatch);
  cv::Mat patch;
  warp_affine(gray, patch, compose(M, invert_affine(from_frame)), {side, side}, cv::BORDER_REPLICATE);
  return patch;
}

bool Detector::verify_patch_has_face(const cv::Mat& patch, double threshold) {
  if (patch.empty()) return false;
  if (patch.type() != CV_8UC1) throw AlignError("Detector::verify_patch_has_face: the patch must be CV_8UC1");
  for (const dlib::rect_detection& d : impl_->run(patch, threshold)) {
    const FaceBox f = to_box(d);
    const double dx = f.center.x - 0.5 * (kVerifyPatch - 1), dy = f.center.y - 0.5 * (kVerifyPatch - 1);
    if (std::hypot(dx, dy) < 0.35 * kVerifyBox && f.size > 0.6 * kVerifyBox && f.size < 1.6 * kVerifyBox)
      return true;
  }
  return false;
}

bool Detector::verify(const cv::Mat& frame, PixelFormat format, const FaceBox& box, double threshold) {
  return verify_patch_has_face(verify_patch(frame, format, box), threshold);
}

}  // namespace starganv2::align
