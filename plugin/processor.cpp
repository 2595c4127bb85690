#include "processor.h"

#include <ATen/ATen.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <future>
#include <mutex>
#include <span>
#include <utility>

#include "align/compositor.h"
#include "align/face_aligner.h"
#include "align/image.h"
#include "align/landmarks.h"
#include "model/safetensors.h"
#include "model/style.h"
#include "model/translator.h"

namespace starganv2::plugin {

namespace fs = std::filesystem;
using Kind = ProcessorError::Kind;
using Clock = std::chrono::steady_clock;

namespace {

// The crops handed to the generator; the translator takes either order, RGB is what it was
// trained on.
constexpr align::PixelFormat kCropFormat = align::PixelFormat::kRGB;
// Faces the aligner follows at most; max-faces picks the largest of them for translation.
constexpr int kMaxTrackedFaces = 32;

align::PixelFormat to_align_format(PixelLayout layout) {
  switch (layout) {
    case PixelLayout::kRGB: return align::PixelFormat::kRGB;
    case PixelLayout::kBGR: return align::PixelFormat::kBGR;
    case PixelLayout::kRGBA:
    case PixelLayout::kRGBx: return align::PixelFormat::kRGBx;
    case PixelLayout::kBGRA:
    case PixelLayout::kBGRx: return align::PixelFormat::kBGRx;
  }
  return align::PixelFormat::kRGB;
}

starganv2::Precision to_engine_precision(Precision p) {
  switch (p) {
    case Precision::kFp32: return starganv2::Precision::kFloat32;
    case Precision::kFp16: return starganv2::Precision::kFloat16;
    case Precision::kBf16: return starganv2::Precision::kBFloat16;
    case Precision::kAuto: break;
  }
  return starganv2::Precision::kAuto;
}

int cv_type(PixelLayout layout) {
  return (layout == PixelLayout::kRGB || layout == PixelLayout::kBGR) ? CV_8UC3 : CV_8UC4;
}

// A cv::Mat over the mapped frame: no copy, writes go straight to the buffer.
cv::Mat wrap(const FrameView& f) {
  return cv::Mat(f.height, f.width, cv_type(f.layout), f.data, static_cast<size_t>(f.stride));
}

ImageView view_of(const cv::Mat& crop) {
  return ImageView{crop.data, crop.cols, crop.rows, static_cast<int64_t>(crop.step[0]),
                   PixelFormat::kRGB};
}

MutableImageView mutable_view_of(cv::Mat& crop) {
  return MutableImageView{crop.data, crop.cols, crop.rows, static_cast<int64_t>(crop.step[0]),
                          PixelFormat::kRGB};
}

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw ProcessorError(Kind::kNotFound, std::string(what) + " " + path + " does not exist");
  if (fs::is_directory(path, ec))
    throw ProcessorError(Kind::kRead, std::string(what) + " " + path + " is a directory");
}

// A crop's pixels, tightly packed.
std::vector<uint8_t> packed(const cv::Mat& crop) {
  const cv::Mat c = crop.isContinuous() ? crop : crop.clone();
  return std::vector<uint8_t>(c.data, c.data + c.total() * c.elemSize());
}

// Copies an RGB image (CV_8UC3) into `dst` (a region of the frame, `format`), colour channels
// only: alpha/padding bytes of 4-byte formats are kept.
void put_rgb(const cv::Mat& rgb, cv::Mat dst, align::PixelFormat format) {
  const align::ChannelIndex c = align::channel_index(format);
  const int from_to[] = {0, c.r, 1, c.g, 2, c.b};
  cv::mixChannels(&rgb, 1, &dst, 1, from_to, 3);
}

// dlib's landmark model (about 100 MB, a second to load) is read-only and shared by every
// Processor of the process; it stays loaded once used.
std::shared_ptr<const align::ShapeModel> shared_shape_model() {
  static std::mutex lock;
  static std::shared_ptr<const align::ShapeModel> model;
  std::lock_guard<std::mutex> lk(lock);
  if (model) return model;
  std::error_code ec;
  if (!fs::exists(align::kDefaultShapeModel, ec))
    throw ProcessorError(Kind::kNotFound,
                         std::string("dlib's 68-point landmark model ") +
                             align::kDefaultShapeModel +
                             " does not exist (Debian package libdlib-data)");
  try {
    model = align::ShapeModel::load();
    return model;
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kRead, e.what());
  }
}

// What a FaceAligner is built with; FaceAligner takes its options only at construction.
struct AlignerKey {
  int crop_size = 0;
  int detect_interval = 0;
  double smoothing = 0;
  bool operator==(const AlignerKey&) const = default;
};

// Building a FaceAligner deserialises dlib's HOG detector (0.3-0.7 s on a small CPU). Aligners
// of finished streams are kept, reset, for the next start with the same options, so that state
// changes and restarts do not pay for it again.
class AlignerPool {
 public:
  static std::unique_ptr<align::FaceAligner> take(const AlignerKey& key) {
    std::lock_guard<std::mutex> lk(lock());
    auto& s = spares();
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (it->first == key) {
        auto aligner = std::move(it->second);
        s.erase(it);
        return aligner;
      }
    }
    return nullptr;
  }
  static void give(const AlignerKey& key, std::unique_ptr<align::FaceAligner> aligner) {
    if (!aligner) return;
    aligner->reset();
    std::lock_guard<std::mutex> lk(lock());
    auto& s = spares();
    if (s.size() >= kMaxSpares) s.erase(s.begin());
    s.emplace_back(key, std::move(aligner));
  }
  static std::unique_ptr<align::FaceAligner> build(const AlignerKey& key) {
    align::AlignerOptions a;
    // Face count and size limits are applied to the aligner's output (see select_faces), so
    // that changing them needs no new aligner.
    a.detector.max_faces = kMaxTrackedFaces;
    a.detector.min_face_size = 0;
    a.smoothing.strength = key.smoothing;
    a.crop_size = key.crop_size;
    a.crop_format = kCropFormat;
    a.detect_interval = key.detect_interval;
    return std::make_unique<align::FaceAligner>(shared_shape_model(), a);
  }
  static std::unique_ptr<align::FaceAligner> take_or_build(const AlignerKey& key) {
    if (auto a = take(key)) return a;
    return build(key);
  }

 private:
  static constexpr size_t kMaxSpares = 4;
  static std::mutex& lock() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::pair<AlignerKey, std::unique_ptr<align::FaceAligner>>>& spares() {
    static std::vector<std::pair<AlignerKey, std::unique_ptr<align::FaceAligner>>> s;
    return s;
  }
};

}  // namespace

struct Processor::Impl {
  EngineOptions engine;
  Translator translator;

  // Alignment. `aligner` follows the faces; a change of detect-interval or smoothing builds its
  // replacement on a worker thread (or takes one from the pool) while frames keep flowing.
  AlignOptions align_options;
  AlignerKey aligner_key;
  std::unique_ptr<align::FaceAligner> aligner;
  std::future<std::unique_ptr<align::FaceAligner>> pending;
  AlignerKey pending_key;
  std::unique_ptr<align::Compositor> compositor;
  std::unique_ptr<align::Compositor> mask_compositor;  // colour matching off, for the mask view

  StyleOptions style;
  bool has_style = false;

  // The last translated faces, for reuse_last().
  std::vector<align::Compositor::Face> last;

  // Aligned reference faces by file (size and time tell a rewritten file), most recent last:
  // a tool that alternates references, or a stream switching between a few, aligns each once.
  struct CachedReference {
    std::string path;
    uintmax_t size = 0;
    fs::file_time_type mtime;
    cv::Mat crop;
  };
  static constexpr size_t kMaxCachedReferences = 8;
  std::vector<CachedReference> references;

  // What find_still() found, for render_still().
  Mode still_mode = Mode::kFace;
  cv::Size still_size;
  std::vector<align::AlignedFace> still_faces;
  cv::Mat still_small;  // kFrame: the image at img_size, RGB

  Impl(const EngineOptions& options, const AlignOptions& align)
      : engine(options), translator(open(options)) {
    aligner_key = key_for(align);
    try {
      aligner = AlignerPool::take_or_build(aligner_key);
    } catch (const align::AlignError& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
    build_compositors(align);
    align_options = align;
  }

  ~Impl() {
    if (pending.valid()) {
      try {
        AlignerPool::give(pending_key, pending.get());
      } catch (...) {
        // A replacement that failed to build is simply not kept.
      }
    }
    AlignerPool::give(aligner_key, std::move(aligner));
  }

  static Translator open(const EngineOptions& options) {
    require_file(options.checkpoint, "checkpoint");
    if (!options.fan_checkpoint.empty()) require_file(options.fan_checkpoint, "FAN checkpoint");
    TranslatorOptions t;
    t.device = options.device;
    t.precision = to_engine_precision(options.precision);
    try {
      return Translator::open(options.checkpoint, t, options.fan_checkpoint);
    } catch (const CheckpointError& e) {
      throw ProcessorError(Kind::kRead, e.what());
    } catch (const std::invalid_argument& e) {
      // Bad device or precision strings, or a model the engine cannot take.
      const std::string what = e.what();
      const bool model_problem = what.rfind("Translator:", 0) == 0;
      throw ProcessorError(model_problem ? Kind::kRead : Kind::kSettings,
                           model_problem ? options.checkpoint + ": " + what : what);
    } catch (const std::runtime_error& e) {
      if (options.device.rfind("cuda", 0) == 0)
        throw ProcessorError(Kind::kDevice, "device " + options.device + ": " + e.what());
      throw ProcessorError(Kind::kFailed, options.checkpoint + ": " + e.what());
    }
  }

  int img_size() const { return static_cast<int>(translator.config().img_size); }

  AlignerKey key_for(const AlignOptions& o) const {
    return AlignerKey{img_size(), o.detect_interval, o.smoothing};
  }

  void build_compositors(const AlignOptions& o) {
    align::CompositorOptions c;
    c.feather = o.feather;
    c.color_match = o.color_match;
    align::CompositorOptions m = c;
    m.color_match = false;
    try {
      compositor = std::make_unique<align::Compositor>(img_size(), kCropFormat, c);
      mask_compositor = std::make_unique<align::Compositor>(img_size(), kCropFormat, m);
    } catch (const align::AlignError& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
  }

  void set_align(const AlignOptions& o) {
    if (o.feather != align_options.feather || o.color_match != align_options.color_match)
      build_compositors(o);  // a mask of img_size pixels: instant
    align_options = o;
    update_aligner();
  }

  // Swaps in a finished replacement aligner, and starts one when the wanted options differ.
  void update_aligner() {
    using namespace std::chrono_literals;
    if (pending.valid() && pending.wait_for(0s) == std::future_status::ready) {
      std::unique_ptr<align::FaceAligner> ready;
      try {
        ready = pending.get();
      } catch (const align::AlignError& e) {
        throw ProcessorError(Kind::kSettings, e.what());
      }
      AlignerPool::give(aligner_key, std::move(aligner));
      aligner = std::move(ready);
      aligner_key = pending_key;
      last.clear();
    }
    const AlignerKey want = key_for(align_options);
    if (pending.valid() || want == aligner_key) return;
    if (auto spare = AlignerPool::take(want)) {
      AlignerPool::give(aligner_key, std::move(aligner));
      aligner = std::move(spare);
      aligner_key = want;
      last.clear();
      return;
    }
    pending_key = want;
    pending = std::async(std::launch::async, [want] { return AlignerPool::build(want); });
  }

  // The reference image's largest face, aligned as the generator expects.
  cv::Mat reference_crop(const std::string& path) {
    require_file(path, "reference image");
    std::error_code size_ec, time_ec;
    const uintmax_t size = fs::file_size(path, size_ec);
    const fs::file_time_type mtime = fs::last_write_time(path, time_ec);
    const bool cacheable = !size_ec && !time_ec;
    if (cacheable) {
      for (const CachedReference& r : references)
        if (r.path == path && r.size == size && r.mtime == mtime) return r.crop;
    }
    cv::Mat crop = align_reference(path);
    if (cacheable) {
      std::erase_if(references, [&](const CachedReference& r) { return r.path == path; });
      if (references.size() >= kMaxCachedReferences) references.erase(references.begin());
      references.push_back({path, size, mtime, crop});
    }
    return crop;
  }

  cv::Mat align_reference(const std::string& path) {
    cv::Mat image;
    try {
      image = cv::imread(path, cv::IMREAD_COLOR);
    } catch (const cv::Exception& e) {
      throw ProcessorError(Kind::kRead, "reference image " + path + ": " + e.what());
    }
    if (image.empty())
      throw ProcessorError(Kind::kRead,
                           "reference image " + path + " cannot be read as an image");
    std::vector<align::AlignedFace> faces;
    try {
      faces = aligner->align(image, align::PixelFormat::kBGR);
    } catch (const align::AlignError& e) {
      throw ProcessorError(Kind::kRead, "reference image " + path + ": " + e.what());
    }
    if (faces.empty())
      throw ProcessorError(Kind::kRead, "no face found in the reference image " + path);
    return faces.front().crop;
  }

  void set_style(const StyleOptions& o) {
    // Only what the chosen source depends on counts: a new seed does not redo a reference.
    if (has_style) {
      bool same;
      if (!o.style_file.empty())
        same = o.style_file == style.style_file;
      else if (!o.reference.empty())
        same = style.style_file.empty() && o.reference == style.reference &&
               o.domain == style.domain;
      else
        same = style.style_file.empty() && style.reference.empty() && o.domain == style.domain &&
               o.seed == style.seed && o.psi == style.psi;
      if (same) {
        style = o;
        return;
      }
    }
    int64_t domain = 0;
    try {
      if (!o.domain.empty()) domain = translator.domain_index(o.domain);
    } catch (const std::invalid_argument& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
    if (!o.style_file.empty()) {
      require_file(o.style_file, "style file");
      try {
        translator.use_style(load_style(o.style_file, translator.config().style_dim));
      } catch (const CheckpointError& e) {
        throw ProcessorError(Kind::kRead, e.what());
      } catch (const std::invalid_argument& e) {
        throw ProcessorError(Kind::kRead, "style file " + o.style_file + ": " + e.what());
      }
    } else if (!o.reference.empty()) {
      const cv::Mat crop = reference_crop(o.reference);
      translator.use_reference_style(domain, view_of(crop));
    } else {
      try {
        translator.use_latent_style(domain, o.seed, o.psi);
      } catch (const std::invalid_argument& e) {
        throw ProcessorError(Kind::kSettings, e.what());
      }
    }
    style = o;
    has_style = true;
  }

  std::vector<cv::Mat> translate(const std::vector<cv::Mat>& crops) {
    std::vector<cv::Mat> out(crops.size());
    std::vector<ImageView> in_views;
    std::vector<MutableImageView> out_views;
    for (size_t i = 0; i < crops.size(); ++i) {
      out[i].create(crops[i].rows, crops[i].cols, CV_8UC3);
      in_views.push_back(view_of(crops[i]));
      out_views.push_back(mutable_view_of(out[i]));
    }
    translator.translate(in_views, out_views);  // one batch for every face of the frame
    return out;
  }

  // max-faces and min-face-size: the largest faces that are big enough.
  std::vector<align::AlignedFace> select_faces(std::vector<align::AlignedFace> faces) const {
    std::erase_if(faces, [&](const align::AlignedFace& f) {
      return f.box.size < align_options.min_face_size;
    });
    std::stable_sort(faces.begin(), faces.end(),
                     [](const auto& a, const auto& b) { return a.box.size > b.box.size; });
    if (faces.size() > static_cast<size_t>(std::max(0, align_options.max_faces)))
      faces.resize(align_options.max_faces);
    return faces;
  }

  // Draws the crops in a row from the frame's top-left corner (as far as they fit).
  static void draw_crops(cv::Mat& frame, align::PixelFormat format,
                         const std::vector<const cv::Mat*>& crops) {
    int x = 0;
    for (const cv::Mat* crop : crops) {
      const cv::Rect r = cv::Rect(x, 0, crop->cols, crop->rows) & cv::Rect(0, 0, frame.cols, frame.rows);
      if (r.empty()) break;
      put_rgb((*crop)(cv::Rect(0, 0, r.width, r.height)), frame(r), format);
      x += crop->cols;
    }
  }

  FrameReport process_faces(cv::Mat& frame, align::PixelFormat format, View view,
                            double timestamp_s) {
    return render_faces(frame, format, view,
                        select_faces(aligner->process(frame, format, timestamp_s)), nullptr);
  }

  // Translates `faces` of `frame` and draws `view`; the crops go to `still` when given.
  FrameReport render_faces(cv::Mat& frame, align::PixelFormat format, View view,
                           const std::vector<align::AlignedFace>& faces,
                           std::vector<StillFace>* still) {
    FrameReport report;
    last.clear();
    if (faces.empty()) return report;
    std::vector<cv::Mat> crops;
    for (const auto& f : faces) {
      crops.push_back(f.crop);
      const cv::Rect2d b = f.box.bounds();
      report.faces.push_back(FaceBox{f.id, static_cast<int>(std::lround(b.x)),
                                     static_cast<int>(std::lround(b.y)),
                                     static_cast<int>(std::lround(b.width)),
                                     static_cast<int>(std::lround(b.height))});
    }
    const std::vector<cv::Mat> translated = translate(crops);
    for (size_t i = 0; i < faces.size(); ++i) last.push_back({translated[i], faces[i].inverse});
    if (still) {
      still->clear();
      for (size_t i = 0; i < faces.size(); ++i)
        still->push_back({report.faces[i], packed(crops[i]), packed(translated[i])});
    }

    std::vector<const cv::Mat*> row;
    switch (view) {
      case View::kMerged:
        compositor->composite(frame, format, last);
        break;
      case View::kAligned:
        for (const auto& c : crops) row.push_back(&c);
        draw_crops(frame, format, row);
        break;
      case View::kTranslated:
        compositor->composite(frame, format, last);
        for (const auto& c : translated) row.push_back(&c);
        draw_crops(frame, format, row);
        break;
      case View::kSideBySide:
        compositor->composite(frame, format, last);
        for (size_t i = 0; i < crops.size(); ++i) {
          row.push_back(&crops[i]);
          row.push_back(&translated[i]);
        }
        draw_crops(frame, format, row);
        break;
      case View::kMask: {
        // The blend weights, drawn by blending white crops into a black frame.
        cv::Mat black = cv::Mat::zeros(frame.rows, frame.cols, CV_8UC3);
        const cv::Mat white(img_size(), img_size(), CV_8UC3, cv::Scalar::all(255));
        std::vector<align::Compositor::Face> whites;
        for (const auto& f : faces) whites.push_back({white, f.inverse});
        mask_compositor->composite(black, kCropFormat, whites);
        put_rgb(black, frame, format);
        break;
      }
    }
    report.changed = true;
    return report;
  }

  FrameReport process_frame(cv::Mat& frame, align::PixelFormat format) {
    last.clear();
    if (frame.empty()) return FrameReport{};
    return render_frame(frame, format, frame_input(frame, format), nullptr);
  }

  // The whole frame at img_size, RGB, as the generator takes it in frame mode.
  cv::Mat frame_input(const cv::Mat& frame, align::PixelFormat format) const {
    const int size = img_size();
    const cv::Mat rgb = align::to_three_channels(frame, format, kCropFormat);
    cv::Mat small;
    cv::resize(rgb, small, cv::Size(size, size), 0, 0, cv::INTER_AREA);
    return small;
  }

  FrameReport render_frame(cv::Mat& frame, align::PixelFormat format, const cv::Mat& small,
                           std::vector<StillFace>* still) {
    FrameReport report;
    const cv::Mat translated = translate({small}).front();
    cv::Mat full;
    cv::resize(translated, full, frame.size(), 0, 0, cv::INTER_LINEAR);
    put_rgb(full, frame, format);
    report.changed = true;
    if (still) {
      const FaceBox whole{0, 0, 0, frame.cols, frame.rows};
      *still = {StillFace{whole, packed(small), packed(translated)}};
    }
    return report;
  }

  int find_still(cv::Mat& image, align::PixelFormat format, Mode mode) {
    still_mode = mode;
    still_size = image.size();
    still_faces.clear();
    still_small.release();
    if (image.empty()) return 0;
    if (mode == Mode::kFrame) {
      still_small = frame_input(image, format);
      return 1;
    }
    still_faces = select_faces(aligner->align(image, format));
    return static_cast<int>(still_faces.size());
  }

  FrameReport render_still(cv::Mat& out, align::PixelFormat format, View view,
                           std::vector<StillFace>* still) {
    if (still) still->clear();
    if (out.size() != still_size)
      throw ProcessorError(Kind::kSettings,
                           "render_still: the output is " + std::to_string(out.cols) + "x" +
                               std::to_string(out.rows) + ", the image given to find_still " +
                               std::to_string(still_size.width) + "x" +
                               std::to_string(still_size.height));
    if (still_mode == Mode::kFrame) {
      if (still_small.empty()) return FrameReport{};
      return render_frame(out, format, still_small, still);
    }
    if (still_faces.empty()) return FrameReport{};
    // The stream's last faces (for reuse_last) stay as they were.
    std::vector<align::Compositor::Face> stream_last = std::move(last);
    FrameReport report;
    try {
      report = render_faces(out, format, view, still_faces, still);
    } catch (...) {
      last = std::move(stream_last);
      throw;
    }
    last = std::move(stream_last);
    return report;
  }
};

Processor::Processor(const EngineOptions& engine, const AlignOptions& align)
    : impl_(std::make_unique<Impl>(engine, align)) {}

Processor::~Processor() = default;

std::string Processor::active_device() const { return impl_->translator.device().str(); }

const std::vector<std::string>& Processor::domains() const {
  return impl_->translator.domains();
}

int Processor::img_size() const { return impl_->img_size(); }

void Processor::set_style(const StyleOptions& options) { impl_->set_style(options); }

void Processor::set_align(const AlignOptions& options) {
  if (options == impl_->align_options) return;
  impl_->set_align(options);
}

void Processor::reset() {
  impl_->aligner->reset();
  impl_->last.clear();
}

FrameReport Processor::process(const FrameView& frame, Mode mode, View view, double timestamp_s) {
  cv::Mat mat = wrap(frame);
  const align::PixelFormat format = to_align_format(frame.layout);
  try {
    impl_->update_aligner();
    if (mode == Mode::kFrame) return impl_->process_frame(mat, format);
    return impl_->process_faces(mat, format, view, timestamp_s);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

int Processor::find_still(const FrameView& image, Mode mode) {
  cv::Mat mat = wrap(image);
  try {
    return impl_->find_still(mat, to_align_format(image.layout), mode);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

FrameReport Processor::render_still(const FrameView& out, View view,
                                    std::vector<StillFace>* faces) {
  cv::Mat mat = wrap(out);
  try {
    return impl_->render_still(mat, to_align_format(out.layout), view, faces);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
}

FrameReport Processor::reuse_last(const FrameView& frame, View /*view*/) {
  FrameReport report;
  report.reused = true;
  if (impl_->last.empty()) return report;
  cv::Mat mat = wrap(frame);
  try {
    impl_->compositor->composite(mat, to_align_format(frame.layout), impl_->last);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kFailed, e.what());
  }
  report.changed = true;
  return report;
}

std::chrono::nanoseconds Processor::warm_up() {
  const cv::Mat blank(img_size(), img_size(), CV_8UC3, cv::Scalar::all(128));
  if (impl_->translator.device().is_cuda()) {
    // Loads kernels and captures the CUDA graph for one face; the call after it is what a face
    // costs from then on.
    const int64_t batch[] = {1};
    impl_->translator.warm_up(batch, PixelFormat::kRGB);
  }
  // On the CPU the first call is the warm-up and a fair (slightly high) measure at once.
  const auto t0 = Clock::now();
  impl_->translate({blank});
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
}

std::vector<float> Processor::style_vector() const {
  const at::Tensor s = impl_->translator.current_style();
  if (!s.defined()) return {};
  const at::Tensor values = s.to(at::kCPU, at::kFloat).contiguous().reshape({-1});
  return std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
}

}  // namespace starganv2::plugin
