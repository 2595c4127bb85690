// Helpers for the starganv2 element tests: RAII for GStreamer objects, test images in every
// supported layout, real frames decoded from a public-domain video, and tiny checkpoints.
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace starganv2::test {

// ---- RAII ------------------------------------------------------------------------------------
struct HarnessDeleter {
  void operator()(GstHarness* h) const { gst_harness_teardown(h); }
};
using HarnessPtr = std::unique_ptr<GstHarness, HarnessDeleter>;

struct ObjectDeleter {
  void operator()(gpointer o) const { gst_object_unref(o); }
};
using ElementPtr = std::unique_ptr<GstElement, ObjectDeleter>;
using BusPtr = std::unique_ptr<GstBus, ObjectDeleter>;

struct BufferDeleter {
  void operator()(GstBuffer* b) const { gst_buffer_unref(b); }
};
using BufferPtr = std::unique_ptr<GstBuffer, BufferDeleter>;

struct MessageDeleter {
  void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageDeleter>;

// Sets the element to NULL before releasing it, so a failing assertion cannot leave threads.
struct PipelineDeleter {
  void operator()(GstElement* p) const {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
};
using PipelinePtr = std::unique_ptr<GstElement, PipelineDeleter>;

// ---- Images ----------------------------------------------------------------------------------
// A tightly packed 8-bit RGB image; converted to the element's formats when pushed.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3
  uint8_t* px(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* px(int x, int y) const {
    return rgb.data() + (static_cast<size_t>(y) * width + x) * 3;
  }
};

// A smooth colour gradient: nothing a face detector could take for a face.
Image gradient_image(int width, int height);
// `img` resized (nearest neighbour) into a width x height canvas at (x, y).
Image place(const Image& img, int width, int height, int x, int y, int scale_num = 1,
            int scale_den = 1);
// Two copies of `img` next to each other.
Image side_by_side(const Image& a, const Image& b);

// Layout of the formats the element takes, and the RGB<->format conversion of the tests.
struct FormatInfo {
  const char* name;
  int bpp;
  int r, g, b;  // byte index of each colour in a pixel
  int pad;      // byte index of alpha/padding, -1 for none
};
const FormatInfo& format_info(const std::string& format);
extern const char* const kFormats[6];

std::string caps_string(const std::string& format, int width, int height);
// A buffer in `format` (alpha/padding bytes set to a pattern so that changes to them show),
// with GstVideoInfo's default strides.
BufferPtr make_buffer(const Image& img, const std::string& format);
// Back to RGB (plus the padding bytes in `pad` when wanted).
Image buffer_to_image(GstBuffer* buffer, const std::string& format, int width, int height,
                      std::vector<uint8_t>* pad = nullptr);
// Bytes of a buffer, for bit-exact comparisons.
std::vector<uint8_t> buffer_bytes(GstBuffer* buffer);

// ---- Real frames -----------------------------------------------------------------------------
// Megamind.avi from Debian's opencv-doc (public domain, 270 frames of 720x528 with a face in
// nearly all of them); nullopt when it is not installed.
std::optional<std::filesystem::path> megamind_video();
// Frames [first, first + count) of a video, decoded by GStreamer. Throws std::runtime_error.
// Frames first..first+count of the video as RGB. Throws MissingPlugin when GStreamer has no
// element for its container or codec (a package is missing), std::runtime_error when decoding
// fails otherwise.
std::vector<Image> decode_frames(const std::filesystem::path& video, int first, int count);
struct MissingPlugin : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- Files -----------------------------------------------------------------------------------
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct TinyModelOptions {
  double w_hpf = 0.0;
  bool with_fan = false;         // add fan.* (only meaningful with w_hpf > 0)
  bool with_generator = true;    // false gives an incompatible checkpoint
  uint64_t seed = 1;
};
// Random he-init networks at a small config (img_size 64, two domains "female" and "male")
// written through model/'s write_checkpoint.
void write_tiny_checkpoint(const std::filesystem::path& path, const TinyModelOptions& options);
// Random FAN weights alone, as a separate file for fan-checkpoint.
void write_fan_checkpoint(const std::filesystem::path& path, uint64_t seed);
// The latent style the engine computes for (domain, seed), saved as a style file.
void write_latent_style_file(const std::filesystem::path& checkpoint, const std::string& domain,
                             uint64_t seed, const std::filesystem::path& out);
// An image file (PNG) from an Image.
void write_png(const std::filesystem::path& path, const Image& img);

// ---- Bus -------------------------------------------------------------------------------------
// Every message of `types` on the bus so far.
std::vector<MessagePtr> drain(GstBus* bus, GstMessageType types);
// The text of an error or warning message ("" for others).
std::string message_text(GstMessage* msg);

}  // namespace starganv2::test
