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

#include "align/image.h"
#include "align/landmarks.h"
#include "model/safetensors.h"
#include "model/seed_rng.h"
#include "model/style.h"
#include "processor_impl.h"

namespace starganv2::plugin {

namespace fs = std::filesystem;
using Kind = ProcessorError::Kind;
using Clock = std::chrono::steady_clock;

namespace {

// Faces the aligner follows at most; max-faces picks the largest of them for translation.
constexpr int kMaxTrackedFaces = 32;

int cv_type(PixelLayout layout) {
  return (layout == PixelLayout::kRGB || layout == PixelLayout::kBGR) ? CV_8UC3 : CV_8UC4;
}

// AlignOptions::temporal is the stabiliser's weight: refused when the options are set, not when
// the engine thread first meets it.
void check_temporal(double temporal) {
  if (!(temporal >= 0 && temporal < 1))
    throw ProcessorError(Kind::kSettings, "temporal must be in [0, 1), not " + std::to_string(temporal));
}

std::mutex& pool_lock() {
  static std::mutex m;
  return m;
}

std::vector<std::pair<AlignerKey, std::unique_ptr<align::FaceAligner>>>& pool_spares() {
  static std::vector<std::pair<AlignerKey, std::unique_ptr<align::FaceAligner>>> s;
  return s;
}

constexpr size_t kMaxSpareAligners = 4;

}  // namespace

ImageView view_of(const cv::Mat& crop) {
  return ImageView{crop.data, crop.cols, crop.rows, static_cast<int64_t>(crop.step[0]),
                   PixelFormat::kRGB};
}

MutableImageView mutable_view_of(cv::Mat& crop) {
  return MutableImageView{crop.data, crop.cols, crop.rows, static_cast<int64_t>(crop.step[0]),
                          PixelFormat::kRGB};
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

// A relative path is looked up from the current folder, which is not always the one the user
// thinks of (a pipeline started from another folder): the error names both.
void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    std::string where;
    if (fs::path(path).is_relative()) {
      std::error_code cwd_ec;
      const fs::path cwd = fs::current_path(cwd_ec);
      if (!cwd_ec)
        where = " (looked for " + (cwd / path).lexically_normal().string() + ": relative paths start in the current folder, " +
                cwd.string() + ")";
    }
    throw ProcessorError(Kind::kNotFound, std::string(what) + " " + path + " does not exist" + where);
  }
  if (fs::is_directory(path, ec))
    throw ProcessorError(Kind::kRead, std::string(what) + " " + path + " is a directory");
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

uint64_t face_seed(uint64_t seed, int face_id) {
  SplitMix64 mix(seed ^ (static_cast<uint64_t>(static_cast<uint32_t>(face_id)) * 0xD1B54A32D192ED03ULL));
  return mix.next();
}

double transition_weight(double elapsed_s, double duration_s) {
  if (!(duration_s > 0) || elapsed_s >= duration_s) return 1.0;
  if (!(elapsed_s > 0)) return 0.0;
  const auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const double u = elapsed_s / duration_s;
  const double lo = sigmoid(-5.0), hi = sigmoid(5.0);
  return std::clamp((sigmoid(10.0 * u - 5.0) - lo) / (hi - lo), 0.0, 1.0);
}

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

align::View to_align_view(View view) {
  switch (view) {
    case View::kMerged: return align::View::kMerged;
    case View::kAligned: return align::View::kAligned;
    case View::kTranslated: return align::View::kTranslated;
    case View::kMask: return align::View::kMask;
    case View::kSideBySide: return align::View::kSideBySide;
  }
  return align::View::kMerged;
}

cv::Mat wrap(const FrameView& f) {
  return cv::Mat(f.height, f.width, cv_type(f.layout), f.data, static_cast<size_t>(f.stride));
}

FaceBox face_box(const align::AlignedFace& face) {
  const cv::Rect2d b = face.box.bounds();
  FaceBox box;
  box.id = face.id;
  box.x = static_cast<int>(std::lround(b.x));
  box.y = static_cast<int>(std::lround(b.y));
  box.width = static_cast<int>(std::lround(b.width));
  box.height = static_cast<int>(std::lround(b.height));
  return box;
}

// ---- AlignerPool ------------------------------------------------------------------------------

bool AlignerPool::contains(const AlignerKey& key) {
  std::lock_guard<std::mutex> lk(pool_lock());
  const auto& s = pool_spares();
  return std::any_of(s.begin(), s.end(), [&](const auto& spare) { return spare.first == key; });
}

std::unique_ptr<align::FaceAligner> AlignerPool::take(const AlignerKey& key) {
  std::lock_guard<std::mutex> lk(pool_lock());
  auto& s = pool_spares();
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it->first == key) {
      auto aligner = std::move(it->second);
      s.erase(it);
      return aligner;
    }
  }
  return nullptr;
}

void AlignerPool::give(const AlignerKey& key, std::unique_ptr<align::FaceAligner> aligner) {
  if (!aligner) return;
  aligner->reset();
  std::lock_guard<std::mutex> lk(pool_lock());
  auto& s = pool_spares();
  if (s.size() >= kMaxSpareAligners) s.erase(s.begin());
  s.emplace_back(key, std::move(aligner));
}

std::unique_ptr<align::FaceAligner> AlignerPool::build(const AlignerKey& key) {
  align::AlignerOptions a;
  // Face count and size limits are applied to the aligner's output (see select_faces), so
  // that changing them needs no new aligner.
  a.detector.max_faces = kMaxTrackedFaces;
  a.detector.min_face_size = 0;
  a.smoothing.strength = key.smoothing;
  a.crop_size = key.crop_size;
  a.crop_format = kCropFormat;
  a.detect_interval = key.detect_interval;
  a.live = key.live;
  return std::make_unique<align::FaceAligner>(shared_shape_model(), a);
}

std::unique_ptr<align::FaceAligner> AlignerPool::take_or_build(const AlignerKey& key) {
  if (auto a = take(key)) return a;
  return build(key);
}

// ---- Processor::Impl: model, styles, settings ------------------------------------------------

Processor::Impl::Impl(const EngineOptions& options, const AlignOptions& align)
    : engine(std::make_unique<EngineClient>(SharedEngine::acquire(options))) {
  aligner_key = key_for(align);
  try {
    aligner = AlignerPool::take_or_build(aligner_key);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kSettings, e.what());
  }
  build_compositors(align);
  check_temporal(align.temporal);
  align_options = align;
  // Whether a stream is live is known only when its frames flow, and the aligner for the other
  // kind would take a detector load to build then: it is built now, in the background.
  AlignerKey other = aligner_key;
  other.live = !aligner_key.live;
  if (!AlignerPool::contains(other)) {
    pending_key = other;
    pending = std::async(std::launch::async, [other] { return AlignerPool::build(other); });
  }
}

Processor::Impl::~Impl() {
  // Frames still inside hold jobs on the engine thread that use this stream's state: let them
  // end (the engine itself goes when its last stream does).
  engine.reset();
  if (pending.valid()) {
    try {
      AlignerPool::give(pending_key, pending.get());
    } catch (...) {
      // A replacement that failed to build is simply not kept.
    }
  }
  AlignerPool::give(aligner_key, std::move(aligner));
}

AlignerKey Processor::Impl::key_for(const AlignOptions& o) const {
  return AlignerKey{img_size(), o.detect_interval, o.smoothing, stream.live};
}

void Processor::Impl::build_compositors(const AlignOptions& o) {
  align::CompositorOptions c;
  c.feather = o.feather;
  c.color_match = o.color_match;
  align::CompositorOptions m = c;
  m.color_match = false;
  try {
    compositor = std::make_shared<const align::Compositor>(img_size(), kCropFormat, c);
    mask_compositor = std::make_shared<const align::Compositor>(img_size(), kCropFormat, m);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kSettings, e.what());
  }
}

void Processor::Impl::set_align(const AlignOptions& o) {
  check_temporal(o.temporal);
  if (o.feather != align_options.feather || o.color_match != align_options.color_match)
    build_compositors(o);  // a mask of img_size pixels: instant
  align_options = o;
  update_aligner();
}

void Processor::Impl::swap_aligner(std::unique_ptr<align::FaceAligner> next, const AlignerKey& key) {
  start_ready(/*all=*/true);
  AlignerPool::give(aligner_key, std::move(aligner));
  aligner = std::move(next);
  aligner_key = key;
}

void Processor::Impl::update_aligner() {
  using namespace std::chrono_literals;
  const AlignerKey want = key_for(align_options);
  if (pending.valid() && pending.wait_for(0s) == std::future_status::ready) {
    std::unique_ptr<align::FaceAligner> ready;
    try {
      ready = pending.get();
    } catch (const align::AlignError& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
    if (pending_key == want && want != aligner_key)
      swap_aligner(std::move(ready), pending_key);
    else
      AlignerPool::give(pending_key, std::move(ready));  // built ahead, or no longer wanted
  }
  if (pending.valid() || want == aligner_key) return;
  if (auto spare = AlignerPool::take(want)) {
    swap_aligner(std::move(spare), want);
    return;
  }
  pending_key = want;
  pending = std::async(std::launch::async, [want] { return AlignerPool::build(want); });
}

void Processor::Impl::use_aligner_now() {
  const AlignerKey want = key_for(align_options);
  if (want == aligner_key) return;
  if (pending.valid() && pending_key == want) {
    std::unique_ptr<align::FaceAligner> ready;
    try {
      ready = pending.get();  // usually built already: see the constructor
    } catch (const align::AlignError& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
    swap_aligner(std::move(ready), want);
    return;
  }
  std::unique_ptr<align::FaceAligner> next;
  try {
    next = AlignerPool::take_or_build(want);
  } catch (const align::AlignError& e) {
    throw ProcessorError(Kind::kSettings, e.what());
  }
  swap_aligner(std::move(next), want);
}

void Processor::Impl::wait_engine_idle() { engine->wait_idle(); }

// The reference image's largest face, aligned as the generator expects.
cv::Mat Processor::Impl::reference_crop(const std::string& path) {
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

cv::Mat Processor::Impl::align_reference(const std::string& path) {
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

void Processor::Impl::set_style(const StyleOptions& o) {
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
             o.seed == style.seed && o.psi == style.psi && o.per_face == style.per_face;
    if (same) {
      style = o;
      return;
    }
  }
  const SharedEngine& model = engine->engine();
  int64_t domain = 0;
  try {
    if (!o.domain.empty()) domain = engine->call([&](Translator& t) { return t.domain_index(o.domain); });
  } catch (const std::invalid_argument& e) {
    throw ProcessorError(Kind::kSettings, e.what());
  }
  auto next = std::make_shared<StylePlan>();
  next->options = o;
  next->domain = domain;
  next->domain_name = model.domains().at(static_cast<size_t>(domain));
  if (!o.style_file.empty()) {
    next->source = StyleSource::kStyleFile;
    require_file(o.style_file, "style file");
    try {
      std::map<std::string, std::string> meta;
      const at::Tensor loaded = load_style(o.style_file, model.config().style_dim, &meta);
      // The engine's own checks of a style (shape, finite values), on its thread.
      next->code = engine->call([&](Translator& t) {
        t.use_style(loaded);
        return t.current_style();
      });
      // A style file's style is of the domain it was made for (its "domain", as --save-style
      // writes it): that is the domain reported, not the domain setting, which only chooses
      // latent and reference styles. A file without one, or naming a domain this model lacks,
      // is reported under the domain setting.
      const auto named = meta.find("domain");
      const auto& names = model.domains();
      const auto it = named == meta.end() ? names.end() : std::find(names.begin(), names.end(), named->second);
      if (it != names.end()) {
        next->domain = it - names.begin();
        next->domain_name = *it;
      }
    } catch (const CheckpointError& e) {
      throw ProcessorError(Kind::kRead, e.what());
    } catch (const std::invalid_argument& e) {
      throw ProcessorError(Kind::kRead, "style file " + o.style_file + ": " + e.what());
    }
  } else if (!o.reference.empty()) {
    next->source = StyleSource::kReference;
    const cv::Mat crop = reference_crop(o.reference);
    next->code = engine->call([&](Translator& t) { return t.reference_style(domain, view_of(crop)); });
  } else {
    try {
      next->code = engine->call([&](Translator& t) { return t.latent_style(domain, o.seed, o.psi); });
    } catch (const std::invalid_argument& e) {
      throw ProcessorError(Kind::kSettings, e.what());
    }
  }
  next->serial = ++style_serial;
  plan = std::move(next);
  style = o;
  has_style = true;
}

at::Tensor Processor::Impl::target_style(Translator& t, const StylePlan& p, int id) {
  if (!p.per_face_latent()) return p.code;
  auto it = book.targets.find(id);
  if (it != book.targets.end()) return it->second;
  // Faces come and go over a long stream; their codes are cheap to make again (F on one z).
  if (book.targets.size() >= 64) book.targets.clear();
  at::Tensor code = t.latent_style(p.domain, face_seed(p.options.seed, id), p.options.psi);
  book.targets.emplace(id, code);
  return code;
}

at::Tensor Processor::Impl::frame_styles(Translator& t, const std::shared_ptr<const StylePlan>& p,
                                         const std::vector<int>& ids, double weight) {
  if (p != book.plan) {
    // A new style: its faces move from what they showed last. A change that comes during
    // another one starts from the blend shown then, so nothing jumps.
    book.from = weight < 1.0 && book.plan ? book.shown : std::map<int, at::Tensor>{};
    book.targets.clear();
    book.plan = p;
  }
  if (weight >= 1.0) book.from.clear();
  std::vector<at::Tensor> codes;
  std::map<int, at::Tensor> shown;
  for (int id : ids) {
    at::Tensor code = target_style(t, *p, id);
    auto from = book.from.find(id);
    // The paper's interpolation: a straight line between the two style codes, whatever their
    // domains (G takes the domain from the code alone), as in the official video, where the
    // weight follows the same sigmoid schedule (transition_weight).
    if (from != book.from.end()) code = interpolate_styles(from->second, code, weight);
    shown[id] = code;
    codes.push_back(code);
  }
  book.shown = std::move(shown);
  return at::stack(codes);
}

std::vector<cv::Mat> Processor::Impl::translate(const std::vector<cv::Mat>& crops) {
  std::vector<cv::Mat> out(crops.size());
  std::vector<ImageView> in_views;
  std::vector<MutableImageView> out_views;
  for (size_t i = 0; i < crops.size(); ++i) {
    out[i].create(crops[i].rows, crops[i].cols, CV_8UC3);
    in_views.push_back(view_of(crops[i]));
    out_views.push_back(mutable_view_of(out[i]));
  }
  const at::Tensor code = plan ? plan->code : at::Tensor();
  engine->call([&](Translator& t) {
    // Styles are always given: the engine's current style may be another stream's.
    const at::Tensor one = code.defined() ? code : t.average_style(0);
    t.translate(in_views, out_views, one.reshape({1, -1}).expand({static_cast<int64_t>(crops.size()), -1}).contiguous());
  });
  return out;
}

std::vector<align::AlignedFace> Processor::Impl::select_faces(std::vector<align::AlignedFace> faces) const {
  std::erase_if(faces, [&](const align::AlignedFace& f) {
    return f.box.size < align_options.min_face_size;
  });
  std::stable_sort(faces.begin(), faces.end(),
                   [](const auto& a, const auto& b) { return a.box.size > b.box.size; });
  if (faces.size() > static_cast<size_t>(std::max(0, align_options.max_faces)))
    faces.resize(align_options.max_faces);
  return faces;
}


// ---- Processor: model, styles, settings -------------------------------------------------------

Processor::Processor(const EngineOptions& engine, const AlignOptions& align)
    : impl_(std::make_unique<Impl>(engine, align)) {}

Processor::~Processor() = default;

std::string Processor::active_device() const { return impl_->engine->engine().device(); }

std::vector<std::string> Processor::warnings() const {
  return impl_->engine->call([](Translator& t) { return t.warnings(); });
}

const std::vector<std::string>& Processor::domains() const { return impl_->engine->engine().domains(); }

int Processor::img_size() const { return impl_->img_size(); }

void Processor::set_style(const StyleOptions& options) {
  // A property controller sets the same value again on every frame: nothing to wait for then.
  if (impl_->has_style && options == impl_->style) return;
  // The style is computed on the engine thread (engine->call), between two forwards; frames
  // already pushed keep the plan they were pushed with.
  try {
    impl_->set_style(options);
  } catch (const c10::Error& e) {
    // E.g. CUDA out of memory while the new style is computed: the translator only replaces
    // its style once the new one exists, so the previous one is still in use; say so as a
    // refused style rather than as a failure of the stream.
    throw ProcessorError(Kind::kFailed, std::string("computing the style failed: ") + e.what_without_backtrace());
  }
}

void Processor::set_align(const AlignOptions& options) {
  if (options == impl_->align_options) return;
  impl_->set_align(options);
}

std::chrono::nanoseconds Processor::warm_up() {
  impl_->wait_engine_idle();
  const cv::Mat blank(img_size(), img_size(), CV_8UC3, cv::Scalar::all(128));
  if (impl_->engine->engine().is_cuda()) {
    // Loads kernels and captures a CUDA graph for every batch size 1..max-faces here, at start,
    // so that none is captured on the streaming thread; the call after it is what a face costs.
    // (A shared engine keeps the graphs of the first stream that warms it up; larger live
    // batches of several streams run eagerly.)
    const int64_t faces = std::max(1, impl_->align_options.max_faces);
    impl_->engine->call([faces](Translator& t) {
      if (t.graph_batch_sizes(PixelFormat::kRGB).empty()) t.warm_up_to(faces, PixelFormat::kRGB);
    });
  }
  // On the CPU the first call is the warm-up and a fair (slightly high) measure at once.
  const auto t0 = Clock::now();
  impl_->translate({blank});
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
}

std::vector<float> Processor::style_vector() const {
  if (!impl_->plan) return {};
  const at::Tensor s = impl_->plan->code;
  const at::Tensor values = s.to(at::kCPU, at::kFloat).contiguous().reshape({-1});
  return std::vector<float>(values.data_ptr<float>(), values.data_ptr<float>() + values.numel());
}

std::string Processor::style_domain() const { return impl_->plan ? impl_->plan->domain_name : std::string(); }

}  // namespace starganv2::plugin
