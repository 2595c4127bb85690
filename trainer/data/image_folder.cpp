#include "image_folder.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <system_error>
#include <thread>

#include "trainer/random.h"

namespace starganv2 {

namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::vector<fs::path> list_images(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
  if (ec) throw DataError(dir.string() + ": cannot list the folder: " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw DataError(dir.string() + ": cannot list the folder: " + ec.message());
    if (is_hidden(it->path())) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && is_image_name(it->path())) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool decodes(const fs::path& p) {
  // Reduced decoding lets libjpeg skip most of the work; it still reads every block, so
  // truncated or corrupt files fail here.
  const cv::Mat m = cv::imread(p.string(), cv::IMREAD_REDUCED_COLOR_8);
  return !m.empty();
}

}  // namespace

int64_t ImageFolder::num_images() const {
  int64_t n = 0;
  for (const auto& f : files) n += static_cast<int64_t>(f.size());
  return n;
}

std::vector<int64_t> ImageFolder::counts() const {
  std::vector<int64_t> c;
  for (const auto& f : files) c.push_back(static_cast<int64_t>(f.size()));
  return c;
}

std::string ImageFolder::fingerprint() const {
  uint64_t h = splitmix64(domains.size());
  auto mix = [&](const std::string& s) {
    for (unsigned char ch : s) h = splitmix64(h ^ ch);
    h = splitmix64(h ^ 0xffULL);
  };
  for (size_t d = 0; d < domains.size(); ++d) {
    mix(domains[d]);
    for (const auto& f : files[d]) mix(fs::relative(f, root).generic_string());
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
  return text;
}

ImageFolder scan_image_folder(const fs::path& root, const ScanOptions& options,
                              const std::function<void(const std::string&)>& warn) {
  std::error_code ec;
  if (!fs::exists(root, ec)) throw DataError(root.string() + ": the image folder does not exist");
  if (!fs::is_directory(root, ec)) throw DataError(root.string() + ": not a folder (expected one sub-folder per domain)");

  ImageFolder folder;
  folder.root = root;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (!is_hidden(it->path()) && it->is_directory()) folder.domains.push_back(it->path().filename().string());
  if (ec) throw DataError(root.string() + ": cannot list the folder: " + ec.message());
  if (folder.domains.empty())
    throw DataError(root.string() + ": has no sub-folders; put the images of each domain in its own sub-folder "
                                    "(e.g. " + (root / "female").string() + ", " + (root / "male").string() + ")");
  std::sort(folder.domains.begin(), folder.domains.end());

  std::vector<std::vector<fs::path>> found;
  for (const auto& d : folder.domains) found.push_back(list_images(root / d));

  std::vector<std::vector<char>> ok(found.size());
  for (size_t d = 0; d < found.size(); ++d) ok[d].assign(found[d].size(), 1);
  if (options.verify) {
    std::vector<std::pair<size_t, size_t>> jobs;
    for (size_t d = 0; d < found.size(); ++d)
      for (size_t i = 0; i < found[d].size(); ++i) jobs.emplace_back(d, i);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t j; (j = next++) < jobs.size();) ok[jobs[j].first][jobs[j].second] = decodes(found[jobs[j].first][jobs[j].second]);
    };
    std::vector<std::thread> threads;
    for (int t = 1; t < std::max(1, options.workers); ++t) threads.emplace_back(work);
    work();
    for (auto& t : threads) t.join();
  }

  folder.files.resize(found.size());
  for (size_t d = 0; d < found.size(); ++d) {
    size_t bad = 0;
    for (size_t i = 0; i < found[d].size(); ++i) {
      if (ok[d][i]) {
        folder.files[d].push_back(found[d][i]);
      } else {
        ++bad;
        folder.skipped.push_back(found[d][i]);
        if (warn) warn("warning: " + found[d][i].string() + ": cannot be decoded as an image; skipped");
      }
    }
    if (folder.files[d].empty()) {
      const fs::path dir = root / folder.domains[d];
      if (bad > 0)
        throw DataError(dir.string() + ": domain \"" + folder.domains[d] + "\" has no readable image (all " +
                        std::to_string(bad) + " failed to decode)");
      throw DataError(dir.string() + ": domain \"" + folder.domains[d] + "\" has no images (.jpg, .jpeg, .png)");
    }
  }
  return folder;
}

}  // namespace starganv2
