// The curves of a run as a picture (issue 23): losses and evaluation figures over iterations,
// drawn from <out>/log.jsonl into a PNG beside the sample grids, because people would rather look
// at curves than read JSONL. OpenCV drawing, as the trainer's other PNGs.
#pragma once

#include <filesystem>
#include <string>

#include <opencv2/core.hpp>

namespace starganv2 {

// The panels of log lines `log_text` (one JSON object per line, with "step"; lines that do not
// parse, e.g. a half-written last one, are skipped), as a BGR image: discriminator and generator
// totals, the latent-guided loss terms, then each evaluation figure that is present (diversity,
// face found, pose error, FID, LPIPS), each with its legend and axes. Panels without data are
// left out; an empty image when nothing can be drawn.
cv::Mat draw_curves(const std::string& log_text);

// draw_curves of the file `log`, written to `png` (beside it, then renamed). Returns false, and
// writes nothing, when there is nothing to draw. Throws DataError when the PNG cannot be written.
bool write_curves(const std::filesystem::path& log, const std::filesystem::path& png);

}  // namespace starganv2
