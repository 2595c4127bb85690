// starganv2-translate: the element's translation for still images and folders of them. The work
// is the element's own (plugin::Processor: align the faces, translate, blend back); this file
// only reads and writes images and turns the command line into styles. See --help.
#include <CLI/CLI.hpp>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/locations.h"
#include "model/style.h"
#include "processor.h"
#include "seed_args.h"

namespace {

namespace fs = std::filesystem;
using starganv2::plugin::AlignOptions;
using starganv2::plugin::EngineOptions;
using starganv2::plugin::FrameView;
using starganv2::plugin::Mode;
using starganv2::plugin::PixelLayout;
using starganv2::plugin::Precision;
using starganv2::plugin::Processor;
using starganv2::plugin::ProcessorError;
using starganv2::plugin::StillFace;
using starganv2::plugin::StyleOptions;
using starganv2::plugin::View;

constexpr const char* kProgram = "starganv2-translate";

// Exit codes, as --help and the README state them.
constexpr int kExitDone = 0;
constexpr int kExitBadInput = 1;  // bad options, inputs, model or outputs (one message on stderr)

// A problem that ends the run: the message is printed once and the exit code is kExitBadInput.
class Fatal : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  std::vector<std::string> inputs;
  std::string out;
  std::string grid;
  bool recursive = false;
  std::string checkpoint;
  std::string fan_checkpoint;
  std::string device = "auto";
  std::string precision = "auto";
  std::string mode = "face";
  std::string view = "merged";
  std::string domain;
  std::vector<uint64_t> seeds = {0};
  std::vector<std::string> seed_args = {"0"};  // as typed: may end with input paths
  double psi = 1.0;
  std::vector<std::string> references;
  std::vector<std::string> style_files;
  std::string save_style;
  std::string save_aligned;
  AlignOptions align;
  std::string format = "png";
  std::string no_face = "copy";
  bool quiet = false;
};

// One column of the output: a style and the suffix that names its files.
struct Style {
  StyleOptions options;
  std::string label;
};

// One image to translate and where its outputs go (one path per style; empty without --out).
struct Job {
  fs::path input;
  std::vector<fs::path> outputs;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_folder_image(const fs::path& p) {
  const std::string ext = lower(p.extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// A name OpenCV can write an image to (by its extension).
bool is_image_name(const fs::path& p) {
  if (!p.has_extension()) return false;
  try {
    return cv::haveImageWriter(p.string());
  } catch (const cv::Exception&) {
    return false;
  }
}

// The images of each input, with the name (relative to the output folder) they are written as.
std::vector<std::pair<fs::path, fs::path>> collect_inputs(const Options& o, bool* any_folder) {
  std::vector<std::pair<fs::path, fs::path>> found;
  *any_folder = false;
  for (const std::string& in : o.inputs) {
    const fs::path path(in);
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Fatal("input " + in + " does not exist");
    if (!fs::is_directory(path, ec)) {
      found.emplace_back(path, path.filename());
      continue;
    }
    *any_folder = true;
    std::vector<fs::path> files;
    try {
      if (o.recursive) {
        for (const auto& e : fs::recursive_directory_iterator(path))
          if (e.is_regular_file() && is_folder_image(e.path())) files.push_back(e.path());
      } else {
        for (const auto& e : fs::directory_iterator(path))
          if (e.is_regular_file() && is_folder_image(e.path())) files.push_back(e.path());
      }
    } catch (const fs::filesystem_error& e) {
      throw Fatal("cannot list the folder " + in + ": " + e.code().message());
    }
    if (files.empty())
      throw Fatal("no image found in the folder " + in + " (looked for .jpg, .jpeg and .png" +
                  (o.recursive ? " in it and its sub-folders)" : "; --recursive looks in sub-folders too)"));
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) found.emplace_back(f, f.lexically_relative(path));
  }
  return found;
}

// Makes `folder` (and its parents) and checks that files can be created in it.
void require_writable_folder(const fs::path& folder, const std::string& what) {
  const fs::path f = folder.empty() ? fs::path(".") : folder;
  std::error_code ec;
  fs::create_directories(f, ec);
  if (ec) throw Fatal("cannot create the " + what + " " + f.string() + ": " + ec.message());
  if (!fs::is_directory(f, ec)) throw Fatal("the " + what + " " + f.string() + " is not a folder");
  if (::access(f.c_str(), W_OK) != 0)
    throw Fatal("the " + what + " " + f.string() + " is not writable");
}

std::vector<Style> make_styles(const Options& o, bool seeds_given) {
  std::vector<Style> styles;
  StyleOptions base;
  base.domain = o.domain;
  base.psi = o.psi;
  if (seeds_given || (o.references.empty() && o.style_files.empty())) {
    for (uint64_t seed : o.seeds) {
      Style s{base, "seed" + std::to_string(seed)};
      s.options.seed = seed;
      styles.push_back(s);
    }
  }
  for (const std::string& r : o.references) {
    Style s{base, "ref-" + fs::path(r).stem().string()};
    s.options.reference = r;
    styles.push_back(s);
  }
  for (const std::string& f : o.style_files) {
    Style s{base, "style-" + fs::path(f).stem().string()};
    s.options.style_file = f;
    styles.push_back(s);
  }
  // Labels name files, so they must differ ("--seed 3 3", two references called face.jpg).
  std::map<std::string, int> seen;
  for (Style& s : styles) {
    const int n = ++seen[s.label];
    if (n > 1) s.label += "-" + std::to_string(n);
  }
  return styles;
}

// Where each image's outputs go, checked before any work: folders made and writable, no two
// outputs on one path, no input overwritten.
std::vector<Job> plan(const Options& o, const std::vector<Style>& styles) {
  bool any_folder = false;
  const auto inputs = collect_inputs(o, &any_folder);
  std::vector<Job> jobs;
  for (const auto& [input, rel] : inputs) jobs.push_back(Job{input, {}});
  if (o.out.empty()) return jobs;

  const fs::path out(o.out);
  std::error_code ec;
  const bool out_is_file = is_image_name(out) && !fs::is_directory(out, ec);
  if (out_is_file && (any_folder || inputs.size() > 1))
    throw Fatal("--out " + o.out + " names one image file, but there are " +
                std::to_string(inputs.size()) + " input images; give a folder");
  require_writable_folder(out_is_file ? out.parent_path() : out, "output folder");

  std::set<fs::path> inputs_seen;
  for (const auto& [input, rel] : inputs) inputs_seen.insert(fs::weakly_canonical(input, ec));
  std::map<fs::path, fs::path> written_by;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const fs::path& rel = inputs[i].second;
    for (const Style& s : styles) {
      const std::string suffix = styles.size() > 1 ? "-" + s.label : "";
      fs::path path;
      if (out_is_file) {
        path = out.parent_path() / (out.stem().string() + suffix + out.extension().string());
      } else {
        const std::string ext = o.format == "same" ? rel.extension().string() : "." + o.format;
        path = out / rel.parent_path() / (rel.stem().string() + suffix + ext);
      }
      const fs::path key = fs::weakly_canonical(path, ec);
      if (inputs_seen.count(key))
        throw Fatal("the output " + path.string() + " would overwrite its input; choose another --out or --format");
      const auto [it, fresh] = written_by.emplace(key, inputs[i].first);
      if (!fresh)
        throw Fatal(it->second.string() + " and " + inputs[i].first.string() +
                    " would both be written to " + path.string());
      jobs[i].outputs.push_back(path);
    }
  }
  return jobs;
}

// Encoded in memory, written under a temporary name next to `path` and renamed: an output is
// complete or absent, never a truncated file from a failed run.
void write_image(const fs::path& path, const cv::Mat& bgr) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  const std::string ext = lower(path.extension().string());
  std::vector<int> params;
  if (ext == ".jpg" || ext == ".jpeg") params = {cv::IMWRITE_JPEG_QUALITY, 95};
  std::vector<uchar> bytes;
  bool ok = false;
  std::string why;
  try {
    ok = cv::imencode(ext.empty() ? ".png" : ext, bgr, bytes, params);
  } catch (const cv::Exception& e) {
    why = std::string(": ") + e.what();
  }
  if (!ok) throw Fatal("cannot write " + path.string() + ": cannot encode the image" + why);
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    ok = static_cast<bool>(f);
  }
  if (ok) fs::rename(tmp, path, ec);
  if (!ok || ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Fatal("cannot write " + path.string() + (ec ? ": " + ec.message() : std::string()));
  }
}

// Where each style's file goes for --save-style FILE: FILE for one style, else FILE's name with
// the style's label (FILE-seed3.safetensors, ...).
std::vector<fs::path> style_file_paths(const std::string& file, const std::vector<Style>& styles) {
  std::vector<fs::path> paths;
  if (file.empty()) return paths;
  const fs::path f(file);
  if (f.filename().empty() || fs::is_directory(f))
    throw Fatal("--save-style " + file + ": give a file name (e.g. style.safetensors), not a folder");
  for (const Style& s : styles)
    paths.push_back(styles.size() == 1 ? f : f.parent_path() / (f.stem().string() + "-" + s.label + f.extension().string()));
  return paths;
}

// What a saved style came from, for the file's metadata.
std::string style_source(const StyleOptions& s) {
  if (!s.style_file.empty()) return "style file " + s.style_file;
  if (!s.reference.empty()) return "reference " + fs::absolute(s.reference).lexically_normal().string();
  std::ostringstream text;
  text << "seed " << s.seed << ", psi " << s.psi;
  return text.str();
}

cv::Mat crop_to_bgr(const std::vector<uint8_t>& rgb, int size) {
  const cv::Mat wrapped(size, size, CV_8UC3, const_cast<uint8_t*>(rgb.data()));
  cv::Mat bgr;
  cv::cvtColor(wrapped, bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

FrameView view_of(cv::Mat& bgr) {
  return FrameView{bgr.data, bgr.cols, bgr.rows, static_cast<int>(bgr.step[0]), PixelLayout::kBGR};
}

std::optional<cv::Mat> read_image(const fs::path& path, std::string* why) {
  cv::Mat image;
  try {
    image = cv::imread(path.string(), cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    *why = e.what();
    return std::nullopt;
  }
  if (image.empty()) {
    *why = "not an image OpenCV can read";
    return std::nullopt;
  }
  return image;
}

std::string plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

int run(const Options& o, bool seeds_given) {
  const Mode mode = o.mode == "frame" ? Mode::kFrame : Mode::kFace;
  static const std::map<std::string, View> kViews = {{"merged", View::kMerged},
                                                     {"aligned", View::kAligned},
                                                     {"translated", View::kTranslated},
                                                     {"mask", View::kMask},
                                                     {"side-by-side", View::kSideBySide}};
  static const std::map<std::string, Precision> kPrecisions = {
      {"auto", Precision::kAuto}, {"fp32", Precision::kFp32}, {"fp16", Precision::kFp16}, {"bf16", Precision::kBf16}};
  const View view = kViews.at(o.view);

  if (o.out.empty() && o.grid.empty() && o.save_style.empty() && o.save_aligned.empty())
    throw Fatal("nothing to write: give --out, --grid, --save-aligned or --save-style");
  if (o.inputs.empty() && (!o.out.empty() || !o.grid.empty() || !o.save_aligned.empty()))
    throw Fatal("no input: give one or more images or folders for --out, --grid and --save-aligned (see --help)");
  if (o.checkpoint.empty()) {
    const fs::path demo = starganv2::shipped_model();
    throw Fatal("--checkpoint is required: a model file from starganv2-train or the converter" +
                (demo.empty() ? std::string() : ", e.g. the demo model " + demo.string()));
  }
  std::error_code exists_ec;
  if (!fs::exists(o.checkpoint, exists_ec)) {
    // A path copied from the README (examples/models/...) run from another folder: name the
    // shipped file of that name.
    const fs::path shipped = starganv2::shipped_model(fs::path(o.checkpoint).filename().string());
    throw Fatal("checkpoint " + o.checkpoint + " does not exist" +
                (shipped.empty() || fs::path(o.checkpoint).is_absolute()
                     ? std::string()
                     : " (relative to " + fs::current_path(exists_ec).string() + "); the shipped model of that name is " +
                           shipped.string()));
  }
  const std::vector<Style> styles = make_styles(o, seeds_given);
  const std::vector<Job> jobs = plan(o, styles);
  if (!o.grid.empty()) {
    if (!is_image_name(o.grid))
      throw Fatal("--grid " + o.grid + ": not an image file name OpenCV can write (use .png or .jpg)");
    require_writable_folder(fs::path(o.grid).parent_path(), "grid's folder");
  }
  if (!o.save_aligned.empty()) {
    std::error_code ec;
    fs::create_directories(o.save_aligned, ec);
    require_writable_folder(o.save_aligned, "--save-aligned folder");
  }
  const std::vector<fs::path> style_paths = style_file_paths(o.save_style, styles);
  if (!style_paths.empty()) require_writable_folder(style_paths.front().parent_path(), "style file's folder");

  EngineOptions engine;
  engine.checkpoint = o.checkpoint;
  engine.fan_checkpoint = o.fan_checkpoint;
  engine.device = o.device;
  engine.precision = kPrecisions.at(o.precision);
  // Still images are unrelated to each other: find_still() detects afresh every time; no
  // tracking or smoothing carries over (these settings only matter to process()).
  AlignOptions align = o.align;
  align.detect_interval = 1;
  align.smoothing = 0;
  std::optional<Processor> processor;
  try {
    processor.emplace(engine, align);
  } catch (const ProcessorError& e) {
    throw Fatal(e.what());
  }
  const int size = processor->img_size();

  // Every style once before any image: an unknown domain or a reference without a face stops
  // the run here, not after half a folder.
  // Each style's domain as the processor reports it: --domain's name, or a style file's own.
  std::vector<std::vector<float>> style_codes;
  std::vector<std::string> style_domains;
  for (const Style& s : styles) {
    try {
      processor->set_style(s.options);
    } catch (const ProcessorError& e) {
      throw Fatal(e.what());
    }
    if (!style_paths.empty()) style_codes.push_back(processor->style_vector());
    style_domains.push_back(processor->style_domain());
  }
  std::vector<std::string> domains_used;
  for (const std::string& d : style_domains)
    if (std::find(domains_used.begin(), domains_used.end(), d) == domains_used.end()) domains_used.push_back(d);
  std::string domains_text;
  for (const std::string& d : domains_used) domains_text += (domains_text.empty() ? "" : ", ") + d;
  // Style files, once every style is known to work: whole files (written atomically) or none.
  for (size_t k = 0; k < style_paths.size(); ++k) {
    try {
      starganv2::save_style(style_paths[k], style_codes[k],
                            {{"domain", style_domains[k]},
                             {"source", style_source(styles[k].options)},
                             {"checkpoint", fs::path(o.checkpoint).filename().string()},
                             {"producer", kProgram}});
    } catch (const std::exception& e) {
      throw Fatal(e.what());
    }
    if (!o.quiet) std::cout << "style (" << style_source(styles[k].options) << ") -> " << style_paths[k].string() << "\n";
  }
  if (!o.quiet && !jobs.empty()) {
    std::cout << kProgram << ": " << o.checkpoint << " (" << size << "x" << size << ") on "
              << processor->active_device() << "; " << (domains_used.size() > 1 ? "domains " : "domain ")
              << domains_text << ", "
              << plural(styles.size(), "style", "styles") << ", " << plural(jobs.size(), "image", "images")
              << "\n";
  }

  std::vector<cv::Mat> grid_rows;
  std::set<std::string> aligned_names;  // --save-aligned's files so far: a repeated name gets -2, -3, ...
  const bool want_faces = !o.grid.empty() || !o.save_aligned.empty();
  std::vector<std::string> unreadable, faceless;
  size_t translated_images = 0, faces_total = 0;
  for (const Job& job : jobs) {
    std::string why;
    std::optional<cv::Mat> image = read_image(job.input, &why);
    if (!image) {
      std::cerr << kProgram << ": error: cannot read " << job.input.string() << ": " << why << "\n";
      unreadable.push_back(job.input.string());
      continue;
    }
    int found = 0;
    try {
      found = processor->find_still(view_of(*image), mode);
    } catch (const ProcessorError& e) {
      throw Fatal(job.input.string() + ": " + e.what());
    }
    if (mode == Mode::kFace && found == 0) {
      faceless.push_back(job.input.string());
      if (o.no_face == "copy")
        for (const fs::path& out : job.outputs) write_image(out, *image);
      if (!o.quiet)
        std::cout << job.input.string() << ": no face"
                  << (job.outputs.empty() ? "" : o.no_face == "copy" ? ", written unchanged" : ", skipped") << "\n";
      continue;
    }
    std::vector<cv::Mat> cells;
    for (size_t k = 0; k < styles.size(); ++k) {
      cv::Mat result = image->clone();
      std::vector<StillFace> faces;
      try {
        processor->set_style(styles[k].options);
        processor->render_still(view_of(result), view, want_faces ? &faces : nullptr);
      } catch (const ProcessorError& e) {
        throw Fatal(job.input.string() + ": " + e.what());
      }
      if (!job.outputs.empty()) write_image(job.outputs[k], result);
      if (faces.empty()) continue;
      // The largest face (faces come largest first), as the networks see it: the same for every
      // style, so taken once.
      if (k == 0) {
        const cv::Mat aligned = crop_to_bgr(faces.front().aligned, size);
        if (!o.save_aligned.empty()) {
          // A set of held-out faces for starganv2-eval faces, or aligned training images.
          std::string name = job.input.stem().string();
          for (int n = 2; !aligned_names.insert(name).second; ++n)
            name = job.input.stem().string() + "-" + std::to_string(n);
          write_image(fs::path(o.save_aligned) / (name + ".png"), aligned);
        }
        if (!o.grid.empty()) cells.push_back(aligned);  // the grid's row: source, then one column per style
      }
      if (!o.grid.empty()) cells.push_back(crop_to_bgr(faces.front().translated, size));
    }
    if (!cells.empty()) {
      cv::Mat row;
      cv::hconcat(cells, row);
      grid_rows.push_back(row);
    }
    ++translated_images;
    faces_total += static_cast<size_t>(found);
    if (!o.quiet) {
      std::cout << job.input.string() << ": "
                << (mode == Mode::kFrame ? std::string("whole image") : plural(found, "face", "faces"));
      if (!job.outputs.empty()) {
        std::cout << " -> " << job.outputs.front().string();
        if (job.outputs.size() > 1) std::cout << " and " << job.outputs.size() - 1 << " more";
      }
      std::cout << "\n";
    }
  }

  if (!o.grid.empty()) {
    if (grid_rows.empty()) {
      std::cerr << kProgram << ": error: no grid written to " << o.grid << ": no image had a face to translate\n";
      return kExitBadInput;
    }
    cv::Mat grid;
    cv::vconcat(grid_rows, grid);
    write_image(o.grid, grid);
    if (!o.quiet)
      std::cout << "grid: " << grid_rows.size() << " rows x " << styles.size() + 1 << " columns of " << size
                << "x" << size << " -> " << o.grid << "\n";
  }

  if (jobs.empty()) return kExitDone;  // --save-style alone
  if (!o.quiet || !faceless.empty()) {
    std::cout << "done: " << plural(translated_images, "image", "images") << " translated";
    if (mode == Mode::kFace) std::cout << " (" << plural(faces_total, "face", "faces") << ")";
    if (!faceless.empty())
      std::cout << "; " << plural(faceless.size(), "image", "images") << " without a face "
                << (o.no_face == "copy" && !o.out.empty() ? "written unchanged" : "skipped");
    std::cout << "\n";
  }
  // A single input already had its message.
  if (!unreadable.empty() && jobs.size() == 1) return kExitBadInput;
  if (!unreadable.empty()) {
    std::cerr << kProgram << ": error: " << plural(unreadable.size(), "image", "images")
              << " could not be read (" << unreadable.front() << (unreadable.size() > 1 ? ", ..." : "") << ")\n";
    return kExitBadInput;
  }
  return kExitDone;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "starganv2-translate: StarGAN v2 on still images and folders, the way the starganv2 element does it on video:\n"
      "each face is found, aligned, translated to --domain with each style (--seed, --reference, --style-file)\n"
      "and blended back (--mode face), or the whole image is translated at the model's size (--mode frame, for\n"
      "AFHQ-like models). Writes one image per input and style to --out and/or a grid to --grid.\n"
      "Images without a face are written unchanged by default (see --no-face) and counted at the end.\n"
      "--save-style writes the styles as style files (for --style-file and the element's style-file), with or\n"
      "without images.\n"
      "Exit codes: 0 done; 1 bad input: an unknown or invalid option, a missing or unusable checkpoint, an unknown\n"
      "domain, an unreadable image, an empty folder or an unwritable output (one message on stderr; files already\n"
      "written are complete, none is left half-written)."};
  app.option_defaults()->always_capture_default();
  app.footer(
      "--seed takes several values (--seed 1 2 3 or --seed 1,2,3); --reference and --style-file one each (repeat\n"
      "them). The style order, in files and grid columns: seeds, then references, then style files.\n"
      "Output names: with one style <out>/<name>.<format> (folders keep their sub-folders); with several,\n"
      "<name>-seed<N>, <name>-ref-<reference>, <name>-style-<file>. A --out ending in an image extension is\n"
      "one file (single input). The grid has one row per image with a face (its largest face; images without\n"
      "one are left out): the aligned source first, then one column per style (seeds, references, style files),\n"
      "each cell the model's size.\n"
      "Style files: safetensors with one F32 tensor \"style\" of style_dim values and metadata format\n"
      "(starganv2-style), domain, source, checkpoint. With several styles, --save-style FILE writes\n"
      "FILE-seed<N>, FILE-ref-<name>, FILE-style-<name> (FILE's extension kept).\n"
      "Example: starganv2-translate photo.jpg --checkpoint examples/models/demo-faces-64.safetensors \\\n"
      "           --domain male --seed 1 2 3 --out out/ --grid out/grid.png\n"
      "         starganv2-translate --checkpoint examples/models/demo-faces-64.safetensors --domain female \\\n"
      "           --reference face.jpg --save-style female-face.safetensors");

  // The element's alignment defaults, except that a still image has time for every face it
  // shows: all of them (up to the aligner's 32), however small.
  o.align.max_faces = 32;
  o.align.min_face_size = 0;
  app.add_option("inputs", o.inputs, "Images (any format OpenCV reads) or folders of .jpg/.jpeg/.png");
  app.add_option("-o,--out", o.out, "Output folder, or one image file for a single input");
  app.add_option("--grid", o.grid, "Also write a grid image: rows = sources, columns = source + each style");
  app.add_flag("-r,--recursive", o.recursive, "Look for images in sub-folders of input folders too");
  // Checked in run() rather than by CLI11, so that the message can name the shipped demo model.
  app.add_option("-c,--checkpoint", o.checkpoint,
                 "Model (.safetensors from starganv2-train or the converter; required), e.g. "
                 "examples/models/demo-faces-64.safetensors");
  app.add_option("--fan-checkpoint", o.fan_checkpoint, "FAN weights when they are not in --checkpoint (w_hpf > 0)");
  app.add_option("-d,--domain", o.domain, "Target domain: a name from the checkpoint or its index (default: the first)");
  app.add_option("-s,--seed", o.seed_args, "Latent seed(s), one style each, e.g. --seed 1 2 3 (used when no "
                                           "--reference or --style-file is given, or together with them when given)")
      ->delimiter(',')
      ->type_name("UINT");
  app.add_option("--psi", o.psi, "Truncation of latent styles towards the domain's average (1 = none)")
      ->check(CLI::Range(0.0, 1.0));
  // One path per occurrence (repeat the option for more), so that a reference cannot swallow
  // the input paths after it.
  app.add_option("--reference", o.references,
                 "Reference image: the style of its largest face; repeat for several (one style each)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--style-file", o.style_files,
                 "Style vector file (as the element's style-file); repeat for several (one style each)")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--save-aligned", o.save_aligned,
                 "Also write each image's largest face, aligned, at the model's size (what the networks are given) as "
                 "DIR/<name>.png: e.g. held-out faces for starganv2-eval faces");
  app.add_option("--save-style", o.save_style,
                 "Write each style (after psi) as a style file: FILE for one style, FILE-<style> for several; "
                 "no input image needed");
  app.add_option("--mode", o.mode, "face: align and translate each face; frame: the whole image at the model's size")
      ->check(CLI::IsMember({"face", "frame"}));
  app.add_option("--view", o.view,
                 "merged: faces blended back; aligned / translated / side-by-side: also draw the crops in the "
                 "top-left corner; mask: the blend weights (face mode only)")
      ->check(CLI::IsMember({"merged", "aligned", "translated", "mask", "side-by-side"}));
  app.add_option("--device", o.device, "auto (CUDA when available), cpu or cuda:N");
  app.add_option("--precision", o.precision, "auto (fp16 on CUDA, fp32 on the CPU), fp32, fp16 or bf16")
      ->check(CLI::IsMember({"auto", "fp32", "fp16", "bf16"}));
  app.add_option("--max-faces", o.align.max_faces, "Translate at most this many faces per image (the largest)")
      ->check(CLI::Range(1, 32));
  app.add_option("--min-face-size", o.align.min_face_size,
                 "Ignore faces whose box is narrower than this many pixels")
      ->check(CLI::Range(0, 8192));
  app.add_option("--feather", o.align.feather, "Width of the blend edge in aligned-crop widths")
      ->check(CLI::Range(0.0, 0.5));
  app.add_flag("--color-match", o.align.color_match, "Match the translated face's colours to the original's");
  app.add_option("--format", o.format, "Output format in folders: png, jpg (quality 95) or same (as the input)")
      ->check(CLI::IsMember({"png", "jpg", "same"}));
  app.add_option("--no-face", o.no_face, "Images without a face: copy (write them unchanged) or skip")
      ->check(CLI::IsMember({"copy", "skip"}));
  app.add_flag("-q,--quiet", o.quiet, "Only errors and the no-face count");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" with exit code 0; every real one is bad input.
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << kProgram << ": error: " << e.what() << " (see --help)\n";
    return kExitBadInput;
  }

  // "--seed 1 2 photo.jpg": the seed list reads on into the inputs; what is not a number is one.
  std::string bad_seed;
  if (!starganv2::plugin::split_seed_args(o.seed_args, o.seeds, o.inputs, bad_seed)) {
    std::cerr << kProgram << ": error: --seed " << bad_seed << ": not a seed (a whole number from 0 to 2^64-1)\n";
    return kExitBadInput;
  }
  if (o.inputs.empty() && o.save_style.empty()) {
    std::cerr << kProgram << ": error: no input: give one or more images or folders (see --help)\n";
    return kExitBadInput;
  }

  try {
    return run(o, app.get_option("--seed")->count() > 0);
  } catch (const Fatal& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
  }
  return kExitBadInput;
}
