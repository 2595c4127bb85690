// The element's worker: ties align/ (find, align and blend faces) to the model/ Translator for
// one video stream. No GStreamer here, so the element's source stays glue and this part can be
// driven by tests and benchmarks alone. Not thread-safe: one streaming thread owns it (it runs
// its own workers: detection, detector confirmations and the networks, each on a thread).
//
// Frames go through a pipeline: push() takes a frame in, pop() gives finished frames back in the
// order they came. Between the two, a frame is aligned, its faces are translated on the engine's
// thread while the next frame is aligned, and the result is blended back. process() is push()
// and pop() of one frame.
//
// Files are exact: the same frames give the same output bit for bit, whatever the thread timing
// and whether frames overlap or not. Live streams never wait for the detector: its results are
// merged into whichever frame is current when they arrive.
//
// The code is in four files by what it does: processor.cpp (model, styles, settings),
// stream.cpp (the stream pipeline), still.cpp (the still-image API) and align/views.cpp (what is
// drawn into a frame).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace starganv2::align {
class ShapeModel;
}

namespace starganv2::plugin {

// Byte order of a packed 8-bit video frame (GStreamer's RGB, BGR, RGBA, BGRA, RGBx, BGRx).
enum class PixelLayout { kRGB, kBGR, kRGBA, kBGRA, kRGBx, kBGRx };

enum class Precision { kAuto, kFp32, kFp16, kBf16 };
enum class Mode { kFace, kFrame };
enum class View { kMerged, kAligned, kTranslated, kMask, kSideBySide };

// What is fixed while the stream runs (changing it means reloading).
struct EngineOptions {
  std::string checkpoint;      // .safetensors written by starganv2-train or the converter
  std::string fan_checkpoint;  // FAN weights when they are not in `checkpoint`; "" = same file
  std::string device = "auto"; // auto | cpu | cuda:N
  Precision precision = Precision::kAuto;
  // Share the loaded model and its engine threads with every other Processor of the process that
  // loads the same file, FAN, device and precision (shared_engine.h); false: one of its own.
  bool share = true;
  // On the CPU, forwards the engine may run at once for different streams (each on a thread of
  // its own, on the same weights): 0 = chosen by the model (one per stream below 256 px crops,
  // where a forward alone leaves cores idle; 1 from 256 px, where it does not and each lane
  // would hold its activations: see shared_engine.cpp). On a GPU always 1.
  int cpu_lanes = 0;
};

// What the style is made of. Precedence: style_file, then reference, then seed + psi.
struct StyleOptions {
  std::string domain;     // a domain name of the checkpoint or its index; "" = domain 0
  uint64_t seed = 0;      // latent z for the mapping network
  double psi = 1.0;       // truncation towards the domain's average style; 1 = none
  std::string reference;  // image whose face gives the style
  std::string style_file; // an explicit style vector
  // Latent styles only: each tracked face of a stream gets its own z, seeded by face_seed(seed,
  // face id), for as long as it is tracked. A reference or style file is shared by all faces.
  bool per_face = false;
  bool operator==(const StyleOptions&) const = default;
};

// Where a style came from.
enum class StyleSource { kLatent, kReference, kStyleFile };

// The seed of face `face_id`'s latent code in per-face styles: the first SplitMix64 output for
// the state seed XOR (face_id * 0xD1B54A32D192ED03), so that neighbouring ids and seeds give
// unrelated codes, the same on every run and device.
uint64_t face_seed(uint64_t seed, int face_id);

// Where the style of a stream moves from one style code to the next (see StyleTransition in
// processor_impl.h): the weight of the new code after `elapsed_s` of a `duration_s` transition,
// the official StarGAN v2 video schedule, sigmoid(10 u - 5) for u = elapsed / duration, scaled
// so that it runs exactly from 0 to 1. 1 when duration_s <= 0 or elapsed_s >= duration_s.
double transition_weight(double elapsed_s, double duration_s);

struct AlignOptions {
  int detect_interval = 5;  // run the detector every N frames, track in between
  int max_faces = 4;
  int min_face_size = 64;   // pixels of the face box in the frame
  double smoothing = 0.5;   // temporal smoothing of the alignment, 0 = off
  double feather = 0.08;    // width of the blend edge in aligned-crop widths
  bool color_match = false;
  // Temporal stabilisation of the translated faces (align/temporal.h): the most weight a face's
  // previous output, carried along the input's motion, gets where the input did not change;
  // 0 = off (each frame translated on its own), < 1. 0.7 (the element's default) removes about
  // two thirds of the flicker the demo model adds on Megamind.avi (README, "Steady faces").
  double temporal = 0.7;
  bool operator==(const AlignOptions&) const = default;
};

struct FrameView {
  uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int stride = 0;  // bytes per row
  PixelLayout layout = PixelLayout::kRGB;
};

struct FaceBox {
  int id = 0;  // stable while the face is tracked
  int x = 0, y = 0, width = 0, height = 0;
  // The 68 landmarks (iBUG 300-W order) as fitted on the frame, x0, y0, x1, y1, ... in frame
  // pixels; empty in frame mode and for still images.
  std::vector<float> landmarks;
  uint64_t style_seed = 0;  // per-face latent styles: the seed of this face's z (face_seed)
};

// The style a frame's faces were given (the frame's own settings, so it is exact whatever the
// overlap).
struct StyleReport {
  std::string domain;  // the domain's name in the checkpoint
  StyleSource source = StyleSource::kLatent;
  uint64_t seed = 0;
  double psi = 1.0;
  std::string reference;
  std::string style_file;
  bool per_face = false;
  // Progress of a style change (transition_weight): 0 = the previous style, 1 = this one.
  double transition = 1.0;
};

// Where a frame's time went, in milliseconds; every figure is the time of the thread named.
struct StageTimes {
  double handoff = 0;      // streaming thread: copies and patches handed to the detection workers
  double detection = 0;    // a whole-frame detection applied to this frame: on the streaming
                           // thread when detection_here, else the worker's time
  bool detection_here = false;
  double landmarks = 0;    // streaming thread: landmark fits (files: and the detector's checks)
  double warp = 0;         // streaming thread: aligned crops
  double networks = 0;     // engine thread: FAN, G for this frame's batch
  double compositing = 0;  // streaming thread: blending back / drawing the view
  double temporal = 0;     // engine thread, after the networks: temporal stabilisation of the faces
  double queued = 0;       // waiting for the (shared) engine before the forward began
  int batch_faces = 0;     // faces in that forward (other streams' included)
  int batch_streams = 0;   // streams in that forward
  double frame = 0;        // streaming thread: all it spent on this frame, waits included
};

struct FrameReport {
  std::vector<FaceBox> faces;
  StyleReport style;  // empty domain when nothing was translated (no face, a late frame)
  bool reused = false;   // degraded: the last translated faces were put back, nothing was run
  bool changed = false;  // the frame was written to
  StageTimes times;
};

// How the pipeline treats a stream.
struct StreamOptions {
  // Live: never wait for the detector, merge its results when they arrive. Otherwise (files)
  // results apply to fixed frames and the output is deterministic.
  bool live = false;
  // Align frame n+1 while the networks run for frame n, and blend frame n-1 back meanwhile.
  // Live streams then hold one frame more; files hold a few more so that detections can run
  // ahead on a worker.
  bool overlap = true;
  // Live streams on a shared engine: how long a frame's faces may wait for other live streams'
  // faces to join their forward (0: batch whatever is queued, wait for nothing).
  std::chrono::microseconds batch_timeout{0};
  bool operator==(const StreamOptions&) const = default;
};

// A frame's settings, read when it enters the pipeline.
struct FrameSettings {
  Mode mode = Mode::kFace;
  View view = View::kMerged;
  double timestamp_s = -1;  // for smoothing and transitions; < 0 = the next frame at 30 fps; must increase
  bool late = false;        // reuse the last translated faces instead of running anything
  // Blend of the translated faces with the original ones: 1 = translated, 0 = the frame as it came.
  double strength = 1.0;
  // A new style (set_style) reaches this frame: its faces move from the style shown before to
  // the new one over this many seconds of timestamps (transition_weight); 0 = at once. Read
  // from the first frame pushed after the change.
  double transition_s = 0;
};

// A frame that left the pipeline.
struct FinishedFrame {
  uint64_t tag = 0;  // what push() was given
  FrameReport report;
};

// Totals since the Processor was made.
struct StreamCounters {
  long frames = 0;
  long detections_on_streaming_thread = 0;
  long detections_on_workers = 0;
  int engine_streams = 0;  // streams on this stream's engine, itself included (shared_engine.h)
};

// Why something failed, so the element can name the right GStreamer error.
class ProcessorError : public std::runtime_error {
 public:
  enum class Kind {
    kNotFound,  // a file that is not there
    kRead,      // a file that cannot be read or is not what it should be
    kSettings,  // a property value that cannot work (unknown domain, bad device string, …)
    kDevice,    // the requested device does not exist
    kFailed,    // anything else while running
  };
  ProcessorError(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// One face of a still image: where it is, and its crops before and after translation
// (img_size x img_size, RGB, tightly packed).
struct StillFace {
  FaceBox box;
  std::vector<uint8_t> aligned;
  std::vector<uint8_t> translated;
};

// dlib's 68-point landmark model at its Debian path (about 100 MB, a second or more to load),
// loaded on first use and shared, read-only, by every Processor of the process and by anyone else
// who fits landmarks (starganv2-eval). Throws ProcessorError when it is missing or unreadable.
std::shared_ptr<const align::ShapeModel> shared_shape_model();

class Processor {
 public:
  // Loads and validates the checkpoint (and FAN) onto the device and prepares alignment.
  // Throws ProcessorError.
  Processor(const EngineOptions& engine, const AlignOptions& align);
  ~Processor();
  Processor(const Processor&) = delete;
  Processor& operator=(const Processor&) = delete;

  std::string active_device() const;              // e.g. "cpu", "cuda:0"
  // What the engine noted without failing, one sentence each: a FAN file the model does not use,
  // tensors its networks do not have, CUDA graphs turned off. Read it when no frame is inside.
  std::vector<std::string> warnings() const;
  const std::vector<std::string>& domains() const;
  int img_size() const;

  // Recomputes the style when the options differ from the current ones. On failure (a bad
  // value, or a LibTorch error such as running out of memory) throws ProcessorError and keeps
  // the previous style. Stream frames pushed from now on get the new style (moving to it over
  // their FrameSettings::transition_s); frames already pushed keep theirs.
  void set_style(const StyleOptions& options);
  // The current style code (style_dim values, after psi), e.g. to save it as a style file;
  // empty before the first set_style().
  std::vector<float> style_vector() const;
  // The domain of the current style, as frames report it: the domain setting's name, or a style
  // file's own domain; empty before the first set_style().
  std::string style_domain() const;
  // Feather, colour matching, max-faces and min-face-size apply from the next frame; a new
  // detect-interval or smoothing needs a new face tracker, which is built on a worker thread
  // (frames keep the old one meanwhile, a few frames at most) unless a spare one is at hand.
  void set_align(const AlignOptions& options);
  // Forget tracked faces (after a flush or a new stream).
  void reset();

  // ---- The stream pipeline ----
  // Applies from the next frame that enters; frames already inside finish as they started.
  void set_stream(const StreamOptions& options);
  const StreamOptions& stream() const;
  // Most frames the pipeline holds before pop() must give the oldest back (1 = no overlap).
  int window() const;

  // Takes a frame in. Its pixels must stay valid, and untouched by anyone else, until pop()
  // returns it; the frame is written in place. `tag` comes back with it.
  void push(const FrameView& frame, const FrameSettings& settings, uint64_t tag);
  // The oldest frame when it is finished: when the window is full, or `drain` (end of stream,
  // a format change) asks for every frame; then it waits for the networks. Otherwise nothing.
  std::optional<FinishedFrame> pop(bool drain);
  int in_flight() const;
  // Forgets the frames inside (a flush): they are not written, and pop() will not return them.
  void discard();
  StreamCounters counters() const;

  // One frame through the whole pipeline (push and pop with drain), with nothing else inside.
  FrameReport process(const FrameView& frame, Mode mode, View view, double timestamp_s = -1);
  // The cheap path for a frame that is already late: puts the last translated faces back at
  // their last places as `view` shows them, without running detection or the networks; leaves
  // the frame untouched when there are none.
  FrameReport reuse_last(const FrameView& frame, View view);

  // ---- Still images (starganv2-translate); the stream's tracking state is not touched ----
  // Finds the faces of `image` the thorough way (every detector pass, averaged landmark fits;
  // max-faces and min-face-size apply), or in Mode::kFrame takes the whole image resized to
  // img_size, and keeps them until the next call, so that render_still() can apply several
  // styles without finding them again. Returns how many faces were kept (1 in kFrame).
  int find_still(const FrameView& image, Mode mode);
  // Translates the kept faces with the current style and draws `view` into `out` (in kFrame:
  // the translated image), which must have the size of the image given to find_still (normally
  // a fresh copy of it). `faces`, when given, receives each face's crops.
  FrameReport render_still(const FrameView& out, View view, std::vector<StillFace>* faces = nullptr);

  // One translation of a blank crop, to load kernels and measure a frame's model time.
  std::chrono::nanoseconds warm_up();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace starganv2::plugin
