#include "element_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace starganv2::test {

const char* const kFormats[6] = {"RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx"};

const FormatInfo& format_info(const std::string& format) {
  static const FormatInfo infos[] = {
      {"RGB", 3, 0, 1, 2, -1},  {"BGR", 3, 2, 1, 0, -1},  {"RGBA", 4, 0, 1, 2, 3},
      {"BGRA", 4, 2, 1, 0, 3},  {"RGBx", 4, 0, 1, 2, 3},  {"BGRx", 4, 2, 1, 0, 3},
  };
  for (const auto& info : infos)
    if (format == info.name) return info;
  throw std::invalid_argument("unknown test format " + format);
}

Image gradient_image(int width, int height) {
  Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = img.px(x, y);
      p[0] = static_cast<uint8_t>(x * 255 / std::max(1, width - 1));
      p[1] = static_cast<uint8_t>(y * 255 / std::max(1, height - 1));
      p[2] = static_cast<uint8_t>(((x + y) * 3) & 0xff);
    }
  return img;
}

Image place(const Image& img, int width, int height, int x0, int y0, int scale_num,
            int scale_den) {
  Image out = gradient_image(width, height);
  const int w = img.width * scale_num / scale_den;
  const int h = img.height * scale_num / scale_den;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const int ox = x0 + x, oy = y0 + y;
      if (ox < 0 || oy < 0 || ox >= width || oy >= height) continue;
      const uint8_t* s = img.px(std::min(img.width - 1, x * scale_den / scale_num),
                                std::min(img.height - 1, y * scale_den / scale_num));
      std::memcpy(out.px(ox, oy), s, 3);
    }
  return out;
}

Image side_by_side(const Image& a, const Image& b) {
  Image out{a.width + b.width, std::max(a.height, b.height), {}};
  out.rgb.assign(static_cast<size_t>(out.width) * out.height * 3, 0);
  for (int y = 0; y < a.height; ++y) std::memcpy(out.px(0, y), a.px(0, y), a.width * 3);
  for (int y = 0; y < b.height; ++y) std::memcpy(out.px(a.width, y), b.px(0, y), b.width * 3);
  return out;
}

std::string caps_string(const std::string& format, int width, int height) {
  return "video/x-raw,format=" + format + ",width=" + std::to_string(width) +
         ",height=" + std::to_string(height) + ",framerate=30/1";
}

static GstVideoInfo video_info(const std::string& format, int width, int height) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, gst_video_format_from_string(format.c_str()), width, height);
  return info;
}

BufferPtr make_buffer(const Image& img, const std::string& format) {
  const FormatInfo& f = format_info(format);
  GstVideoInfo info = video_info(format, img.width, img.height);
  BufferPtr buf(gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr));
  GstMapInfo map;
  if (!gst_buffer_map(buf.get(), &map, GST_MAP_WRITE)) throw std::runtime_error("map failed");
  std::memset(map.data, 0x5a, map.size);  // stride padding gets a known value too
  const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) {
      uint8_t* d = map.data + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * f.bpp;
      const uint8_t* s = img.px(x, y);
      d[f.r] = s[0];
      d[f.g] = s[1];
      d[f.b] = s[2];
      if (f.pad >= 0) d[f.pad] = static_cast<uint8_t>(x * 7 + y * 13);
    }
  gst_buffer_unmap(buf.get(), &map);
  return buf;
}

Image buffer_to_image(GstBuffer* buffer, const std::string& format, int width, int height,
                      std::vector<uint8_t>* pad) {
  const FormatInfo& f = format_info(format);
  GstVideoInfo info = video_info(format, width, height);
  Image img{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) throw std::runtime_error("map failed");
  const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
  if (pad) pad->clear();
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const uint8_t* s = map.data + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * f.bpp;
      uint8_t* d = img.px(x, y);
      d[0] = s[f.r];
      d[1] = s[f.g];
      d[2] = s[f.b];
      if (pad && f.pad >= 0) pad->push_back(s[f.pad]);
    }
  gst_buffer_unmap(buffer, &map);
  return img;
}

std::vector<uint8_t> buffer_bytes(GstBuffer* buffer) {
  std::vector<uint8_t> bytes(gst_buffer_get_size(buffer));
  gst_buffer_extract(buffer, 0, bytes.data(), bytes.size());
  return bytes;
}

std::optional<std::filesystem::path> megamind_video() {
  const std::filesystem::path p = "/usr/share/doc/opencv-doc/examples/data/Megamind.avi";
  if (std::filesystem::exists(p)) return p;
  return std::nullopt;
}

std::vector<Image> decode_frames(const std::filesystem::path& video, int first, int count) {
  const std::string desc = "filesrc name=src ! decodebin ! videoconvert ! "
                           "video/x-raw,format=RGB ! appsink name=sink sync=false";
  GError* err = nullptr;
  PipelinePtr pipeline(gst_parse_launch(desc.c_str(), &err));
  if (!pipeline) {
    std::string msg = err ? err->message : "unknown";
    g_clear_error(&err);
    throw std::runtime_error("cannot build the decoding pipeline: " + msg);
  }
  ElementPtr src(gst_bin_get_by_name(GST_BIN(pipeline.get()), "src"));
  ElementPtr sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
  g_object_set(src.get(), "location", video.c_str(), nullptr);
  // decodebin posts "missing-plugin" when no element can demux or decode the stream: a package
  // is not installed, which differs from a decoder that is there and fails.
  std::string error_text;  // the pipeline's first error, if any
  auto missing_plugin = [&]() -> std::string {
    BusPtr bus(gst_element_get_bus(pipeline.get()));
    std::string missing;
    while (GstMessage* m = gst_bus_pop(bus.get())) {
      const GstStructure* st = gst_message_get_structure(m);
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT && st && gst_structure_has_name(st, "missing-plugin")) {
        const gchar* name = gst_structure_get_string(st, "name");
        missing = name ? name : "a demuxer or decoder";
      } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR && error_text.empty()) {
        error_text = message_text(m);
      }
      gst_message_unref(m);
    }
    return missing;
  };
  // Throws (rather than returns) so that a MissingPlugin is not sliced to its base.
  auto fail = [&](const std::string& what) {
    const std::string missing = missing_plugin();
    if (!missing.empty())
      throw MissingPlugin("no GStreamer plugin for " + missing + " to decode " + video.string() +
                           " (Debian packages gstreamer1.0-plugins-good and gstreamer1.0-libav)");
    throw std::runtime_error(what + (error_text.empty() ? std::string() : ": " + error_text));
  };
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    fail("cannot decode " + video.string());
  std::vector<Image> frames;
  for (int i = 0; i < first + count; ++i) {
    // Bounded: a pipeline that failed (e.g. no decoder) never sends EOS, and pull_sample would
    // wait for ever.
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink.get()), 30 * GST_SECOND);
    if (!sample) break;
    if (i >= first) {
      GstVideoInfo info;
      gst_video_info_from_caps(&info, gst_sample_get_caps(sample));
      frames.push_back(buffer_to_image(gst_sample_get_buffer(sample), "RGB",
                                       GST_VIDEO_INFO_WIDTH(&info),
                                       GST_VIDEO_INFO_HEIGHT(&info)));
    }
    gst_sample_unref(sample);
  }
  if (static_cast<int>(frames.size()) != count)
    fail("could not decode frames " + std::to_string(first) + ".." +
                             std::to_string(first + count) + " of " + video.string());
  return frames;
}

TempDir::TempDir() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "starganv2-gst-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<MessagePtr> drain(GstBus* bus, GstMessageType types) {
  std::vector<MessagePtr> out;
  while (GstMessage* m = gst_bus_pop_filtered(bus, types)) out.emplace_back(m);
  return out;
}

std::string message_text(GstMessage* msg) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
    gst_message_parse_error(msg, &err, &debug);
  else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING)
    gst_message_parse_warning(msg, &err, &debug);
  else
    return "";
  std::string text = err ? err->message : "";
  g_clear_error(&err);
  g_free(debug);
  return text;
}

}  // namespace starganv2::test
